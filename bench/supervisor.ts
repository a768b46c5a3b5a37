/**
 * The supervisor (daemon + CLI for named services) against PM2, measured in
 * the same run on the same machine:
 *
 * 1. `tend ps --json` wall time with 1, 100 and 1000 sleeping services
 *    (`sleep 100000` each) against `node -e 0`, and `pm2 jlist` with 1 and
 *    100, interleaved (order rotated every round), spawnSync wall time.
 * 2. Daemon memory (VmRSS, RssAnon, RssFile from /proc/<pid>/status) with 0,
 *    1, 100 and 1000 services for tend (and its reaper beside it), 0, 1 and
 *    100 for PM2's daemon. Node's own binary pages (RssFile) are a floor no
 *    Node daemon goes below; RssAnon is what the daemon itself holds.
 * 3. CLI start → running: `tend start NAME -- sleep 100000` (returns once the
 *    service runs) against `pm2 start sleep.sh --name NAME` (returns once
 *    online), both daemons already running, interleaved with `node -e 0`,
 *    the service deleted between runs. Cold start (no daemon yet) too.
 *
 * PM2 is never a dependency of tend: it is installed at benchmark time into
 * bench/.peers/ (ignored by git; BENCH_PEERS_DIR to move it), with PM2_HOME
 * in a temporary directory. Without network (or with BENCH_NO_PM2=1) the PM2
 * rows are skipped and tend is still measured. Both daemons are stopped and
 * anything left is killed at the end, error or not.
 *
 *   node dist/bench/supervisor.js   (BENCH_PS_RUNS, BENCH_START_RUNS, BENCH_COLD_RUNS, BENCH_BATCH to tune)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { queryDaemonIfRunning } from '../src/cli/daemon-client.js';
import { detect } from '../src/index.js';
import { childCgroups, cmdline, fmt, isAlive, isMain, lastLine, markedProcesses, median, min, procPids, readStat, repoRoot, rotate, sleep, table, timed, withoutExtraCa, type Timed } from './lib.js';
import { identityOf, killLeftovers, memoryStatus, removeDir, stillAlive, stopTendDaemon, waitUntil, type Identity } from './lib-extra.js';

const PM2_VERSION = '7.0.4';
const COUNTS = [1, 100, 1000] as const;
const PM2_MAX_COUNT = 100;
const SLEEP_ARG = '100000';
const TARGET_PS_RATIO = 1.5;
const TARGET_RSS_FRACTION = 0.5;
const TARGET_START_FRACTION = 1 / 3;
/** PEERS.md figures, used for a verdict only when PM2 could not be measured here. */
const PEERS_PM2_RSS_100_MIB = 72.8;
const PEERS_PM2_START_MS = 230;
const MiB = 1024;

/** Runs a command without blocking the event loop (for batches of concurrent starts). */
function runAsync(file: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error) => resolve({ status: null, stderr: String(error) }));
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

/** Installs (or reuses) pm2@PM2_VERSION in a private prefix; returns its CLI, or why it is skipped. */
function installPm2(): { bin: string; how: string } | { skipped: string } {
  if (process.env.BENCH_NO_PM2 === '1') return { skipped: 'BENCH_NO_PM2=1' };
  const prefix = join(process.env.BENCH_PEERS_DIR ?? join(repoRoot, 'bench/.peers'), `pm2-${PM2_VERSION}`);
  const bin = join(prefix, 'node_modules/pm2/bin/pm2');
  const installed = (): boolean => {
    try {
      return (JSON.parse(readFileSync(join(prefix, 'node_modules/pm2/package.json'), 'utf8')) as { version?: string }).version === PM2_VERSION && existsSync(bin);
    } catch {
      return false;
    }
  };
  if (installed()) return { bin, how: `cached in ${prefix}` };
  mkdirSync(prefix, { recursive: true });
  const t0 = performance.now();
  const r = spawnSync('npm', ['install', '--prefix', prefix, '--no-save', '--no-audit', '--no-fund', '--loglevel=error', `pm2@${PM2_VERSION}`], {
    encoding: 'utf8',
    timeout: 300_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error) return { skipped: `npm install pm2@${PM2_VERSION} failed: ${r.error.message}` };
  if (r.status !== 0 || !installed()) return { skipped: `npm install pm2@${PM2_VERSION} exited ${r.status ?? r.signal}: ${lastLine(r.stderr || r.stdout)}` };
  return { bin, how: `installed into ${prefix} in ${fmt((performance.now() - t0) / 1000, 1)} s` };
}

interface Mem {
  readonly rss: number;
  readonly anon: number;
  readonly file: number;
}

/** Median of `samples` reads of /proc/<pid>/status, `gapMs` apart (kB). */
async function memoryOf(pid: number | undefined, samples = 3, gapMs = 300): Promise<Mem | undefined> {
  if (pid === undefined) return undefined;
  const rss: number[] = [];
  const anon: number[] = [];
  const file: number[] = [];
  for (let i = 0; i < samples; i++) {
    if (i > 0) await sleep(gapMs);
    const m = memoryStatus(pid);
    if (m.VmRSS === undefined) return undefined;
    rss.push(m.VmRSS);
    anon.push(m.RssAnon ?? NaN);
    file.push(m.RssFile ?? NaN);
  }
  return { rss: median(rss), anon: median(anon), file: median(file) };
}

const mib = (kb: number | undefined): string => (kb === undefined ? '—' : fmt(kb / MiB, 1));

interface ServiceRow {
  readonly name: string;
  readonly state: string;
  readonly pid: number | null;
  readonly handle?: string;
}

export async function run(): Promise<string> {
  const psRuns = Number(process.env.BENCH_PS_RUNS ?? 15);
  const startRuns = Number(process.env.BENCH_START_RUNS ?? 12);
  const coldRuns = Number(process.env.BENCH_COLD_RUNS ?? 5);
  const batch = Number(process.env.BENCH_BATCH ?? 8);
  const node = process.execPath;
  const bundled = join(repoRoot, 'dist/src/bin/tend.js');
  const tendBin = existsSync(bundled) ? bundled : join(repoRoot, 'dist/src/cli/main.js');
  const extraCa = process.env.NODE_EXTRA_CA_CERTS !== undefined;
  const caps = detect();
  const cgroupParent = caps.cgroup?.parent;
  const cgroupsBefore = new Set(cgroupParent ? childCgroups(cgroupParent) : []);
  const markedBefore = new Set(markedProcesses().map((p) => `${p.pid}:${p.startTime}`));

  // A short TEND_HOME: the daemon's socket lives in it (sun_path is ~108 bytes).
  const base = tmpdir().length <= 24 ? tmpdir() : '/tmp';
  const tendHome = mkdtempSync(join(base, 'tsb-'));
  const pm2Home = mkdtempSync(join(base, 'tsb-pm2-'));
  const work = mkdtempSync(join(base, 'tsb-work-'));
  const sleepScript = join(work, 'sleep.sh');
  writeFileSync(sleepScript, `#!/bin/sh\nexec sleep ${SLEEP_ARG}\n`, { mode: 0o755 });

  const out: string[] = [];
  const notes: string[] = [];
  const tendEnv: NodeJS.ProcessEnv = { ...process.env, TEND_HOME: tendHome };
  const pm2Env: NodeJS.ProcessEnv = { ...process.env, PM2_HOME: pm2Home };
  // Setup commands (batches of starts) skip the extra CA load when it is set: they are not measured.
  const tendSetupEnv = withoutExtraCa(tendEnv);
  const nodeEnv: NodeJS.ProcessEnv = { ...process.env };
  const tend = (args: readonly string[], env = tendEnv, timeoutMs?: number): Timed => timed(node, [tendBin, ...args], env, work, timeoutMs);

  const pm2 = installPm2();
  const pm2Bin = 'bin' in pm2 ? pm2.bin : undefined;
  const pm2Cmd = (args: readonly string[], env = pm2Env, timeoutMs?: number): Timed => timed(node, [pm2Bin ?? '', ...args], env, work, timeoutMs);

  out.push(
    `### Setup`,
    '',
    table(
      ['', ''],
      [
        ['node', process.version],
        ['NODE_EXTRA_CA_CERTS', extraCa ? 'set: every node start here pays ~80 ms for it (PEERS.md); measured rows keep it, as `node -e 0` does' : 'unset'],
        ['tend CLI', tendBin.slice(repoRoot.length)],
        ['TEND_HOME', tendHome],
        ['PM2', 'bin' in pm2 ? `pm2@${PM2_VERSION}, ${pm2.how}; PM2_HOME ${pm2Home}` : `**PM2 rows skipped**: ${pm2.skipped}`],
        ['tend auto strategy', caps.best ?? 'none'],
      ],
    ),
    '',
  );

  const tendDaemon = (): { pid: number; reaperPid: number | undefined } | undefined => {
    const r = tend(['daemon', 'status', '--json']);
    try {
      const s = JSON.parse(r.stdout) as { running?: boolean; pid?: number; reaperPid?: number };
      return s.running && s.pid ? { pid: s.pid, reaperPid: s.reaperPid } : undefined;
    } catch {
      return undefined;
    }
  };
  const pm2DaemonPid = (): number | undefined => {
    try {
      const pid = Number(readFileSync(join(pm2Home, 'pm2.pid'), 'utf8').trim());
      return pid > 0 && isAlive(readStat(pid)) ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  /** Daemon identities seen during the run: killed at the end if still alive. */
  const daemons: Identity[] = [];
  const remember = (pid: number | undefined): void => {
    const id = pid === undefined ? undefined : identityOf(pid);
    if (id && !daemons.some((d) => d.pid === id.pid && d.startTime === id.startTime)) daemons.push(id);
  };
  const tendServices = (): ServiceRow[] => {
    const r = tend(['ps', '--json'], tendSetupEnv);
    try {
      return (JSON.parse(r.stdout) as { services: ServiceRow[] }).services;
    } catch {
      return [];
    }
  };
  const pm2Online = (): number => {
    const r = pm2Cmd(['jlist'], withoutExtraCa(pm2Env));
    try {
      return (JSON.parse(r.stdout) as { pm2_env?: { status?: string } }[]).filter((p) => p.pm2_env?.status === 'online').length;
    } catch {
      return 0;
    }
  };

  let failure: string | undefined;
  try {
    // ---- Cold start: no daemon running yet -------------------------------------------------
    {
      const cold: Record<string, number[]> = { node: [], tend: [], pm2: [] };
      const failures: string[] = [];
      const steps = [
        { key: 'node', run: () => timed(node, ['-e', '0'], nodeEnv) },
        {
          key: 'tend',
          run: () => {
            const r = tend(['start', 'cold', '--', 'sleep', SLEEP_ARG]);
            remember(tendDaemon()?.pid);
            tend(['delete', 'cold'], tendSetupEnv);
            tend(['daemon', 'stop', '--force'], tendSetupEnv);
            return r;
          },
        },
        ...(pm2Bin
          ? [
              {
                key: 'pm2',
                run: () => {
                  const r = pm2Cmd(['start', sleepScript, '--name', 'cold']);
                  remember(pm2DaemonPid());
                  pm2Cmd(['kill'], withoutExtraCa(pm2Env));
                  return r;
                },
              },
            ]
          : []),
      ];
      for (let r = 0; r < coldRuns; r++) {
        for (const step of rotate(steps, r)) {
          const res = step.run();
          if (res.status !== 0) failures.push(`${step.key} exit ${res.status}: ${lastLine(res.stderr)}`);
          cold[step.key]?.push(res.ms);
        }
      }
      const nodeMed = median(cold.node ?? []);
      const rows = [
        ['`node -e 0`', cold.node],
        ['`tend start cold -- sleep 100000`, no daemon (CLI starts it)', cold.tend],
        ...(pm2Bin ? [['`pm2 start sleep.sh --name cold`, no daemon (CLI spawns it)', cold.pm2] as const] : []),
      ].map(([label, xs]) => [label as string, fmt(median(xs as number[]), 1), fmt(min(xs as number[]), 1), fmt(median(xs as number[]) / nodeMed, 2)]);
      out.push(
        `### Cold start: CLI start → service running, no daemon yet (${coldRuns} interleaved runs each; the daemon is stopped between runs, not timed)`,
        '',
        table(['command', 'median ms', 'min ms', 'ratio to `node -e 0`'], rows),
        '',
        failures.length ? `failures: ${failures.join('; ')}` : 'every run exited 0',
        '',
      );
    }

    // ---- Daemons up, idle: memory with 0 services -----------------------------------------
    const limit = tend(['limit', '5000'], tendSetupEnv);
    if (limit.status !== 0) throw new Error(`tend limit 5000 failed: ${lastLine(limit.stderr)}`);
    if (pm2Bin) pm2Cmd(['ping'], withoutExtraCa(pm2Env));
    const td = tendDaemon();
    if (!td) throw new Error('tend daemon not running after `tend limit 5000`');
    remember(td.pid);
    remember(td.reaperPid);
    const pm2Pid = pm2Bin ? pm2DaemonPid() : undefined;
    remember(pm2Pid);
    if (pm2Bin && pm2Pid === undefined) notes.push(`PM2 daemon pid not found in ${join(pm2Home, 'pm2.pid')}`);

    interface MemRow {
      readonly count: number;
      readonly stage: string;
      readonly tend: Mem | undefined;
      readonly reaper: Mem | undefined;
      readonly pm2: Mem | undefined;
    }
    const memRows: MemRow[] = [];
    const recordMemory = async (count: number, stage: string, withPm2: boolean): Promise<void> => {
      await sleep(1000);
      const [t, r, p] = [await memoryOf(td.pid), await memoryOf(td.reaperPid, 1), withPm2 ? await memoryOf(pm2Pid) : undefined];
      memRows.push({ count, stage, tend: t, reaper: r, pm2: p });
    };
    await recordMemory(0, 'idle, fresh daemons', pm2Bin !== undefined);

    // ---- Warm start: both daemons running --------------------------------------------------
    {
      const times: Record<string, number[]> = { node: [], tend: [], pm2: [], tendDelete: [], pm2Delete: [] };
      const failures: string[] = [];
      let notRunning = 0;
      let flaggedUnresponsive = 0;
      const steps = [
        { key: 'node', run: () => timed(node, ['-e', '0'], nodeEnv) },
        {
          key: 'tend',
          run: () => {
            const r = tend(['start', 'warm', '--', 'sleep', SLEEP_ARG]);
            const m = /running( \(unresponsive\))? pid (\d+)/.exec(r.stdout);
            if (!m || !isAlive(readStat(Number(m[2])))) notRunning++;
            if (m?.[1]) flaggedUnresponsive++;
            const d = tend(['delete', 'warm']);
            times.tendDelete?.push(d.ms);
            if (d.status !== 0) failures.push(`tend delete exit ${d.status}: ${lastLine(d.stderr)}`);
            return r;
          },
        },
        ...(pm2Bin
          ? [
              {
                key: 'pm2',
                run: () => {
                  const r = pm2Cmd(['start', sleepScript, '--name', 'warm']);
                  const d = pm2Cmd(['delete', 'warm']);
                  times.pm2Delete?.push(d.ms);
                  if (d.status !== 0) failures.push(`pm2 delete exit ${d.status}: ${lastLine(d.stderr)}`);
                  return r;
                },
              },
            ]
          : []),
      ];
      for (const step of steps) step.run(); // warm the page cache
      for (const k of Object.keys(times)) times[k] = [];
      notRunning = 0;
      flaggedUnresponsive = 0;
      for (let r = 0; r < startRuns; r++) {
        for (const step of rotate(steps, r)) {
          const res = step.run();
          if (res.status !== 0) failures.push(`${step.key} exit ${res.status}: ${lastLine(res.stderr)}`);
          times[step.key]?.push(res.ms);
        }
      }
      const nodeMed = median(times.node ?? []);
      const pm2Med = median(times.pm2 ?? []);
      const row = (label: string, xs: number[] | undefined, vsPm2: boolean): string[] => [
        label,
        fmt(median(xs ?? []), 1),
        fmt(min(xs ?? []), 1),
        fmt(median(xs ?? []) / nodeMed, 2),
        vsPm2 && pm2Bin ? fmt(median(xs ?? []) / pm2Med, 3) : '—',
      ];
      const rows = [
        row('`node -e 0`', times.node, false),
        row('`tend start warm -- sleep 100000`', times.tend, true),
        ...(pm2Bin ? [row('`pm2 start sleep.sh --name warm`', times.pm2, true)] : []),
        row('`tend delete warm` (between runs)', times.tendDelete, false),
        ...(pm2Bin ? [row('`pm2 delete warm` (between runs)', times.pm2Delete, false)] : []),
      ];
      out.push(
        `### CLI start → running, daemons already running (${startRuns} interleaved runs each, order rotated, service deleted between runs)`,
        '',
        table(['command', 'median ms', 'min ms', 'ratio to `node -e 0`', 'ratio to pm2 start'], rows),
        '',
        `${failures.length ? `failures: ${failures.join('; ')}` : 'every run exited 0'}; \`tend start\` returned without a live pid: ${notRunning}; reported the fresh \`sleep\` as "running (unresponsive)": ${flaggedUnresponsive}/${startRuns}`,
        '',
      );
      const tendMed = median(times.tend ?? []);
      const pm2Ref = pm2Bin ? pm2Med : PEERS_PM2_START_MS;
      const src = pm2Bin ? 'same run' : 'PEERS.md, PM2 not measured here';
      notes.push(
        `Verdict (start → running ≤ 1/3 of PM2): tend ${fmt(tendMed, 1)} ms vs pm2 ${fmt(pm2Ref, 1)} ms (${src}) = ${fmt(tendMed / pm2Ref, 3)} → ${tendMed <= pm2Ref * TARGET_START_FRACTION ? 'MET' : 'NOT MET'}`,
      );
    }

    // ---- ps / jlist and memory with 1, 100, 1000 services -----------------------------------
    const psRows: string[][] = [];
    const growRows: string[][] = [];
    let tendCount = 0;
    let pm2Count = 0;
    let psRatio100 = NaN;
    let psRatio100NoCa = NaN;
    for (const count of COUNTS) {
      // Grow tend to `count` services: concurrent `tend start` in batches.
      {
        const t0 = performance.now();
        const names: string[] = [];
        for (let i = tendCount; i < count; i++) names.push(`s${String(i).padStart(4, '0')}`);
        let failed = 0;
        const errors = new Set<string>();
        for (let i = 0; i < names.length; i += batch) {
          const results = await Promise.all(names.slice(i, i + batch).map((n) => runAsync(node, [tendBin, 'start', n, '--', 'sleep', SLEEP_ARG], tendSetupEnv)));
          for (const r of results) {
            if (r.status !== 0) {
              failed++;
              errors.add(lastLine(r.stderr));
            }
          }
        }
        const secs = (performance.now() - t0) / 1000;
        let running = 0;
        await waitUntil(() => (running = tendServices().filter((s) => s.state === 'running').length) >= count, 30_000, 500);
        tendCount = count;
        growRows.push([
          'tend',
          String(count),
          String(names.length),
          `${fmt(secs, 1)} s (${batch} concurrent \`tend start\`)`,
          String(running),
          failed ? `${failed} (${[...errors].slice(0, 3).join(' / ')})` : '0',
        ]);
      }
      const withPm2 = pm2Bin !== undefined && count <= PM2_MAX_COUNT;
      if (withPm2) {
        const t0 = performance.now();
        const apps = [];
        for (let i = pm2Count; i < count; i++) apps.push({ name: `p${String(i).padStart(4, '0')}`, script: sleepScript, autorestart: true });
        const eco = join(work, `apps-${count}.json`);
        writeFileSync(eco, JSON.stringify({ apps }));
        const r = pm2Cmd(['start', eco], withoutExtraCa(pm2Env), 300_000);
        const secs = (performance.now() - t0) / 1000;
        let online = 0;
        await waitUntil(() => (online = pm2Online()) >= count, 30_000, 500);
        pm2Count = count;
        growRows.push(['pm2', String(count), String(apps.length), `${fmt(secs, 1)} s (one \`pm2 start apps.json\`)`, String(online), r.status === 0 ? '0' : `exit ${r.status}: ${lastLine(r.stderr)}`]);
      }

      await recordMemory(count, 'idle after starting', withPm2);

      // ps / jlist, interleaved with node -e 0 (and the same without the extra CA when it is set).
      interface Cmd {
        readonly key: string;
        readonly label: string;
        readonly run: () => Timed;
        readonly base: string;
      }
      const cmds: Cmd[] = [
        { key: 'node', label: '`node -e 0`', run: () => timed(node, ['-e', '0'], nodeEnv), base: 'node' },
        { key: 'tend', label: '`tend ps --json`', run: () => tend(['ps', '--json']), base: 'node' },
      ];
      if (withPm2) cmds.push({ key: 'pm2', label: '`pm2 jlist`', run: () => pm2Cmd(['jlist']), base: 'node' });
      if (extraCa) {
        cmds.push(
          { key: 'node-noca', label: '`node -e 0`, NODE_EXTRA_CA_CERTS unset', run: () => timed(node, ['-e', '0'], withoutExtraCa(nodeEnv)), base: 'node-noca' },
          { key: 'tend-noca', label: '`tend ps --json`, NODE_EXTRA_CA_CERTS unset', run: () => tend(['ps', '--json'], tendSetupEnv), base: 'node-noca' },
        );
        if (withPm2) cmds.push({ key: 'pm2-noca', label: '`pm2 jlist`, NODE_EXTRA_CA_CERTS unset', run: () => pm2Cmd(['jlist'], withoutExtraCa(pm2Env)), base: 'node-noca' });
      }
      const times: Record<string, number[]> = Object.fromEntries(cmds.map((c) => [c.key, [] as number[]]));
      const bytes: Record<string, number> = {};
      const bad: Record<string, number> = {};
      const firstError: Record<string, string> = {};
      for (const c of cmds) bytes[c.key] = c.run().stdout.length; // warm up
      for (let r = 0; r < psRuns; r++) {
        for (const c of rotate(cmds, r)) {
          const res = c.run();
          if (res.status !== 0) {
            bad[c.key] = (bad[c.key] ?? 0) + 1;
            firstError[c.key] ??= `exit ${res.status}: ${lastLine(res.stderr || res.stdout)}`;
          }
          times[c.key]?.push(res.ms);
        }
      }
      for (const c of cmds) {
        const med = median(times[c.key] ?? []);
        const ratio = med / median(times[c.base] ?? []);
        if (c.key === 'tend' && count === 100) psRatio100 = ratio;
        const target = c.key === 'tend' ? `≤${TARGET_PS_RATIO}× ${ratio <= TARGET_PS_RATIO ? '(within)' : '(over)'}` : '—';
        if (c.key === 'tend-noca' && count === 100) psRatio100NoCa = ratio;
        const errors = bad[c.key] ? `${bad[c.key]} (first: ${firstError[c.key]})` : '0';
        psRows.push([String(count), c.label, fmt(med, 1), fmt(min(times[c.key] ?? []), 1), c.key === c.base ? '1.00' : fmt(ratio, 2), String(bytes[c.key] ?? 0), target, errors]);
      }
      // The same request without a node start: connect, ask, parse, in this process.
      {
        const rt: number[] = [];
        let services = NaN;
        const saved = process.env.TEND_HOME;
        process.env.TEND_HOME = tendHome;
        try {
          for (let r = 0; r <= psRuns; r++) {
            const t0 = performance.now();
            const res = await queryDaemonIfRunning('ps', {});
            if (r > 0) rt.push(performance.now() - t0);
            services = res?.services?.length ?? NaN;
          }
        } finally {
          if (saved === undefined) delete process.env.TEND_HOME;
          else process.env.TEND_HOME = saved;
        }
        psRows.push([String(count), `in-process \`ps\` request (connect + request + JSON.parse, no node start; ${services} services)`, fmt(median(rt), 1), fmt(min(rt), 1), '—', '—', '—', '—']);
      }
      await recordMemory(count, `after ${psRuns + 1} ps/jlist calls`, withPm2);
    }

    out.push(
      '### Growing the service count (setup, not a comparison: tend starts go one CLI call per service, PM2 gets one ecosystem file)',
      '',
      table(['manager', 'services', 'added', 'time to add', 'running/online after', 'failed starts'], growRows),
      '',
      `### \`tend ps --json\` and \`pm2 jlist\` wall time (${psRuns} interleaved runs each after one warm-up, order rotated; spawnSync wall time)`,
      '',
      table(['services', 'command', 'median ms', 'min ms', 'ratio to `node -e 0` (same env)', 'stdout bytes', 'target', 'non-zero exits'], psRows),
      '',
    );
    notes.unshift(
      `Verdict (tend ps --json at 100 ≤ ${TARGET_PS_RATIO}× node -e 0): ${fmt(psRatio100, 2)}× → ${psRatio100 <= TARGET_PS_RATIO ? 'MET' : 'NOT MET'}${extraCa ? `; with NODE_EXTRA_CA_CERTS unset (against node -e 0 likewise): ${fmt(psRatio100NoCa, 2)}×` : ''}`,
    );

    const memTable = memRows.map((m) => [
      String(m.count),
      m.stage,
      mib(m.tend?.rss),
      mib(m.tend?.anon),
      mib(m.tend?.file),
      mib(m.reaper?.rss),
      m.pm2 ? mib(m.pm2.rss) : '—',
      m.pm2 ? mib(m.pm2.anon) : '—',
      m.pm2 ? mib(m.pm2.file) : '—',
      m.pm2 && m.tend ? fmt(m.tend.rss / m.pm2.rss, 2) : '—',
    ]);
    out.push(
      '### Daemon memory (MiB; median of 3 reads of /proc/<pid>/status 300 ms apart, after 1 s idle)',
      '',
      table(['services', 'when', 'tend daemon VmRSS', 'tend RssAnon', 'tend RssFile', 'tend-reaper VmRSS', 'pm2 daemon VmRSS', 'pm2 RssAnon', 'pm2 RssFile', 'tend / pm2 VmRSS'], memTable),
      '',
    );
    const at100 = memRows.find((m) => m.count === 100 && m.stage.startsWith('idle'));
    if (at100?.tend) {
      const pm2Rss = at100.pm2 ? at100.pm2.rss / MiB : PEERS_PM2_RSS_100_MIB;
      const src = at100.pm2 ? 'same run' : 'PEERS.md, PM2 not measured here';
      const t = at100.tend.rss / MiB;
      notes.push(
        `Verdict (daemon RSS at 100 ≤ half of PM2): tend ${fmt(t, 1)} MiB (+ reaper ${mib(at100.reaper?.rss)} MiB) vs pm2 ${fmt(pm2Rss, 1)} MiB (${src}) = ${fmt(t / pm2Rss, 2)} → ${t <= pm2Rss * TARGET_RSS_FRACTION ? 'MET' : 'NOT MET'}; tend RssAnon ${mib(at100.tend.anon)} MiB${at100.pm2 ? ` vs pm2 RssAnon ${mib(at100.pm2.anon)} MiB = ${fmt(at100.tend.anon / at100.pm2.anon, 2)}` : ''}`,
      );
    }
  } catch (error) {
    failure = error instanceof Error ? (error.stack ?? error.message) : String(error);
  } finally {
    out.push('### Teardown', '', ...teardown());
  }
  if (notes.length) out.push('', '### Verdicts and notes', '', ...notes.map((n) => `- ${n}`));
  if (failure !== undefined) {
    out.push('', `**benchmark failed**: ${failure}`);
    process.exitCode = 1;
  }
  return out.join('\n');

  /** pm2 kill, tend kill-all + daemon stop --force, then SIGKILL whatever of ours is still alive. */
  function teardown(): string[] {
    const lines: string[] = [];
    const t0 = performance.now();
    if (pm2Bin) {
      const r = pm2Cmd(['kill'], withoutExtraCa(pm2Env), 60_000);
      lines.push(`- \`pm2 kill\`: exit ${r.status}, ${fmt(r.ms, 0)} ms`);
    }
    lines.push(...stopTendDaemon((args) => tend(args, tendSetupEnv, 120_000)));

    // Ours: daemons seen, tend services (marked, running our sleep, new since the start), PM2 apps (our PM2_HOME in their environment).
    const left = killLeftovers(() => [...daemons.filter(stillAlive), ...ourServices()], 5000);
    lines.push(`- left alive after both daemons were stopped (then SIGKILLed): ${left.length ? left.map((i) => `${i.pid}(${readStat(i.pid)?.comm ?? '?'})`).join(' ') : 'none'}`);
    const dirs = cgroupParent ? childCgroups(cgroupParent).filter((d) => !cgroupsBefore.has(d)) : [];
    lines.push(`- new cgroups under ${cgroupParent ?? '(no cgroup parent)'}: ${dirs.length ? `${dirs.length} (${dirs.slice(0, 10).join(' ')}; other tend users may own some)` : 'none'}`);
    for (const d of [tendHome, pm2Home, work]) removeDir(d);
    lines.push(`- teardown took ${fmt((performance.now() - t0) / 1000, 1)} s; temporary directories removed`);
    return lines;
  }

  function ourServices(): Identity[] {
    const found: Identity[] = [];
    for (const p of markedProcesses()) {
      if (!markedBefore.has(`${p.pid}:${p.startTime}`) && cmdline(p.pid) === `sleep ${SLEEP_ARG}`) found.push({ pid: p.pid, startTime: p.startTime });
    }
    const key = `\0PM2_HOME=${pm2Home}\0`;
    for (const pid of procPids()) {
      if (pid === process.pid) continue;
      try {
        if (`\0${readFileSync(`/proc/${pid}/environ`, 'latin1')}`.includes(key)) {
          const id = identityOf(pid);
          if (id) found.push(id);
        }
      } catch {
        /* gone or not ours */
      }
    }
    return found;
  }
}

if (isMain(import.meta.url)) {
  run().then(
    (text) => process.stdout.write(`${text}\n`),
    (error: unknown) => {
      process.stderr.write(`supervisor: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
