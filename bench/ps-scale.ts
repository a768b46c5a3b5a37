/**
 * `tend ps` at scale, measured in one run on one machine:
 *
 * 1. `tend ps --json` wall time at 100 services against `node -e 0`
 *    (interleaved, order rotated every round), twice: with the environment's
 *    NODE_EXTRA_CA_CERTS (if set) and with it unset.
 * 2. The daemon's own cost of `ps` per service: `ps` over the socket minus a
 *    `ping` on the same connection (interleaved, medians), at 100 and 1000
 *    services (and at the largest count).
 * 3. Daemon memory (VmRSS, RssAnon from /proc/<pid>/status) at 1000 services
 *    before any `ps`, after one, and after 50.
 * 4. `tend ps --json` with 10,000 `sleep` services (BENCH_PS_MAX to change):
 *    every one listed, the document's size, the wall time.
 *
 * Services are `sleep <unique arg>` started with `tend up -d` from generated
 * tend.yaml files in batches of 1000 (a batch's definitions must fit the 1 MiB
 * request line), with the strategy tend picks (BENCH_PS_STRATEGY to force one;
 * note that `ps` with pgroup scans the process table once per service).
 * Every daemon and process it starts is stopped, and SIGKILLed if it
 * survives, error or not.
 *
 *   node dist/bench/ps-scale.js   (BENCH_PS_RUNS, BENCH_PS_MAX, BENCH_PS_STRATEGY to tune)
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connectProtocol, type ProtocolClient } from '../src/daemon/protocol-client.js';
import { detect } from '../src/index.js';
import { childCgroups, cmdline, fmt, isMain, lastLine, markedProcesses, median, min, readStat, repoRoot, rotate, sleep, table, timed, withoutExtraCa, type Timed } from './lib.js';
import { identityOf, killLeftovers, memoryStatus, removeDir, stillAlive, stopTendDaemon, type Identity } from './lib-extra.js';

const BATCH = 1000;
const PS_CALLS_FOR_MEMORY = 50;
const TARGET_RSS_GROWTH = 0.1;
/** Ours alone: other runs on this machine start `sleep 100000`. */
const SLEEP_ARG = String(300_000 + (process.pid % 100_000));

const mib = (kb: number | undefined): string => (kb === undefined ? '—' : fmt(kb / 1024, 1));

export async function run(): Promise<string> {
  const runs = Number(process.env.BENCH_PS_RUNS ?? 11);
  const maxCount = Number(process.env.BENCH_PS_MAX ?? 10_000);
  const strategy = process.env.BENCH_PS_STRATEGY;
  const node = process.execPath;
  const tendBin = join(repoRoot, 'dist/src/bin/tend.js');
  const extraCa = process.env.NODE_EXTRA_CA_CERTS !== undefined;
  const caps = detect();
  const cgroupParent = caps.cgroup?.parent;
  const cgroupsBefore = new Set(cgroupParent ? childCgroups(cgroupParent) : []);
  const markedBefore = new Set(markedProcesses().map((p) => `${p.pid}:${p.startTime}`));

  // A short TEND_HOME: the daemon's socket lives in it (sun_path is ~108 bytes).
  const base = tmpdir().length <= 24 ? tmpdir() : '/tmp';
  const tendHome = mkdtempSync(join(base, 'tps-'));
  const work = mkdtempSync(join(base, 'tps-work-'));
  const env: NodeJS.ProcessEnv = { ...process.env, TEND_HOME: tendHome };
  // Setup commands skip the extra CA load when it is set: they are not measured.
  const setupEnv = withoutExtraCa(env);
  const tend = (args: readonly string[], e = env, timeoutMs?: number): Timed => timed(node, [tendBin, ...args], e, work, timeoutMs);

  const out: string[] = [];
  const notes: string[] = [];
  const daemons: Identity[] = [];
  let client: ProtocolClient | undefined;
  let defined = 0;
  const startErrors: string[] = [];
  const costRows: string[][] = [];
  let failure: string | undefined;

  out.push(
    '### Setup',
    '',
    table(
      ['', ''],
      [
        ['node', process.version],
        ['NODE_EXTRA_CA_CERTS', extraCa ? 'set in this environment' : 'unset in this environment'],
        ['TEND_HOME', tendHome],
        ['strategy', strategy ? `${strategy} (BENCH_PS_STRATEGY)` : `auto: ${caps.best ?? 'none'}`],
        ['services', `\`sleep ${SLEEP_ARG}\`, started with \`tend up -d\` in batches of ${BATCH}`],
      ],
    ),
    '',
  );

  /** Grows the stack to `count` services, in `tend up -d` batches. */
  const growTo = (count: number): number => {
    const t0 = performance.now();
    while (defined < count) {
      const n = Math.min(BATCH, count - defined);
      const lines = ['services:'];
      for (let i = defined; i < defined + n; i++) {
        lines.push(`  s${String(i).padStart(5, '0')}:`, '    command: sleep', `    args: ["${SLEEP_ARG}"]`);
        if (strategy) lines.push(`    strategy: ${strategy}`);
      }
      const file = join(work, `batch-${defined}.yaml`);
      writeFileSync(file, `${lines.join('\n')}\n`);
      const r = tend(['up', '-d', '-f', file, '--json'], setupEnv);
      let errors: { name: string; code: string }[] | undefined;
      try {
        errors = (JSON.parse(r.stdout) as { errors: { name: string; code: string }[] }).errors;
      } catch {
        throw new Error(`tend up -d (services ${defined}..${defined + n - 1}) exited ${r.status}: ${lastLine(r.stderr || r.stdout)}`);
      }
      // A start that failed under load is counted and reported, not fatal: ps must still list every definition.
      if (errors.length > 0) startErrors.push(`${errors.length} of services ${defined}..${defined + n - 1} (${[...new Set(errors.map((e) => e.code))].join(', ')})`);
      defined += n;
    }
    return performance.now() - t0;
  };

  const daemonPid = (): number => {
    const r = tend(['daemon', 'status', '--json'], setupEnv);
    const s = JSON.parse(r.stdout) as { running?: boolean; pid?: number; reaperPid?: number };
    if (!s.running || !s.pid) throw new Error(`the daemon is not running: ${lastLine(r.stderr || r.stdout)}`);
    for (const pid of [s.pid, s.reaperPid]) {
      const id = pid === undefined ? undefined : identityOf(pid);
      if (id && !daemons.some((d) => d.pid === id.pid && d.startTime === id.startTime)) daemons.push(id);
    }
    return s.pid;
  };

  /** Median ms of `ps` and of `ping` over the socket, interleaved. */
  const daemonSide = async (count: number, rounds: number): Promise<string[]> => {
    if (!client) throw new Error('no connection to the daemon');
    const ps: number[] = [];
    const ping: number[] = [];
    let listed = 0;
    for (let r = 0; r < rounds; r++) {
      for (const step of rotate(['ps', 'ping'] as const, r)) {
        const t0 = performance.now();
        const result = (await client.request(step, {}, { timeoutMs: 600_000 })) as { services?: unknown[] };
        (step === 'ps' ? ps : ping).push(performance.now() - t0);
        if (step === 'ps') listed = result.services?.length ?? 0;
      }
    }
    const cost = median(ps) - median(ping);
    return [String(count), String(listed), fmt(median(ping), 2), fmt(median(ps), 1), fmt(min(ps), 1), fmt(cost, 1), fmt(cost / count, 4), fmt(cost / count / (median(ping) || 1), 3)];
  };

  const memory = async (pid: number): Promise<{ rss: number; anon: number }> => {
    const rss: number[] = [];
    const anon: number[] = [];
    for (let i = 0; i < 3; i++) {
      await sleep(300);
      const m = memoryStatus(pid);
      rss.push(m.VmRSS ?? NaN);
      anon.push(m.RssAnon ?? NaN);
    }
    return { rss: median(rss), anon: median(anon) };
  };

  try {
    const limit = tend(['limit', String(maxCount + 1000)], setupEnv);
    if (limit.status !== 0) throw new Error(`tend limit failed: ${lastLine(limit.stderr)}`);
    const pid = daemonPid();
    client = await connectProtocol(join(tendHome, 'daemon.sock'), { timeoutMs: 10_000 });

    // ---- 100 services: CLI wall time, daemon-side cost -----------------------------------
    const up100 = growTo(100);
    {
      const steps = [
        { key: 'node', label: '`node -e 0`', run: () => timed(node, ['-e', '0'], env) },
        { key: 'tend', label: '`tend ps --json`', run: () => tend(['ps', '--json']) },
        { key: 'node-noca', label: '`node -e 0`, NODE_EXTRA_CA_CERTS unset', run: () => timed(node, ['-e', '0'], withoutExtraCa(env)) },
        { key: 'tend-noca', label: '`tend ps --json`, NODE_EXTRA_CA_CERTS unset', run: () => tend(['ps', '--json'], withoutExtraCa(env)) },
      ];
      const times = new Map<string, number[]>(steps.map((s) => [s.key, []]));
      const failures: string[] = [];
      for (let r = 0; r < runs; r++) {
        for (const step of rotate(steps, r)) {
          const res = step.run();
          if (res.status !== 0) failures.push(`${step.key} exit ${res.status}: ${lastLine(res.stderr)}`);
          times.get(step.key)?.push(res.ms);
        }
      }
      const med = (key: string): number => median(times.get(key) ?? []);
      const rows = steps.map((s) => {
        const baseline = s.key.endsWith('noca') ? med('node-noca') : med('node');
        return [s.label, fmt(med(s.key), 1), fmt(min(times.get(s.key) ?? []), 1), fmt(med(s.key) / baseline, 2)];
      });
      out.push(
        `### \`tend ps --json\` at 100 services against \`node -e 0\` (${runs} interleaved runs each; NODE_EXTRA_CA_CERTS ${extraCa ? 'set here' : 'not set here, so both pairs measure the same'})`,
        '',
        table(['command', 'median ms', 'min ms', 'ratio to `node -e 0` (same CA setting)'], rows),
        '',
        failures.length ? `failures: ${failures.join('; ')}` : 'every run exited 0',
        '',
      );
    }
    costRows.push(await daemonSide(100, runs));

    // ---- 1000 services: daemon-side cost, memory over 50 ps ------------------------------
    const up1000 = growTo(1000);
    await sleep(1000);
    const before = await memory(pid);
    await client.request('ps', {}, { timeoutMs: 600_000 });
    const afterOne = await memory(pid);
    const calls: number[] = [];
    for (let i = 1; i < PS_CALLS_FOR_MEMORY; i++) {
      const t0 = performance.now();
      await client.request('ps', {}, { timeoutMs: 600_000 });
      calls.push(performance.now() - t0);
    }
    const afterAll = await memory(pid);
    const growth = (afterAll.rss - before.rss) / before.rss;
    out.push(
      `### Daemon memory at 1000 services, ${PS_CALLS_FOR_MEMORY} \`ps\` calls over the socket (median ${fmt(median(calls), 1)} ms each)`,
      '',
      table(
        ['daemon', 'VmRSS MiB', 'RssAnon MiB', 'VmRSS growth vs before'],
        [
          ['before any `ps`', mib(before.rss), mib(before.anon), '—'],
          ['after 1 `ps`', mib(afterOne.rss), mib(afterOne.anon), `${fmt(((afterOne.rss - before.rss) / before.rss) * 100, 1)} %`],
          [`after ${PS_CALLS_FOR_MEMORY} \`ps\``, mib(afterAll.rss), mib(afterAll.anon), `${fmt(growth * 100, 1)} %`],
        ],
      ),
      '',
    );
    notes.push(`Verdict (VmRSS growth over ${PS_CALLS_FOR_MEMORY} \`ps\` at 1000 services ≤ ${TARGET_RSS_GROWTH * 100} %): ${fmt(growth * 100, 1)} % → ${growth <= TARGET_RSS_GROWTH ? 'MET' : 'NOT MET'}`);
    costRows.push(await daemonSide(1000, Math.max(3, Math.ceil(runs / 2))));

    // ---- the largest count: every service listed ----------------------------------------
    const upMax = growTo(maxCount);
    const big = tend(['ps', '--json'], setupEnv);
    let listed = 0;
    let running = 0;
    try {
      const services = (JSON.parse(big.stdout) as { services: { state: string }[] }).services;
      listed = services.length;
      running = services.filter((s) => s.state === 'running').length;
    } catch {
      /* reported as 0 */
    }
    const daemonMem = await memory(pid);
    out.push(
      `### \`tend ps --json\` at ${maxCount} services`,
      '',
      table(
        ['', ''],
        [
          ['exit status', `${big.status}${big.status === 0 ? '' : ` (${lastLine(big.stderr)})`}`],
          ['services listed / running', `${listed} / ${running} (of ${defined} defined)`],
          ['JSON printed', `${fmt(Buffer.byteLength(big.stdout) / 1024 / 1024, 1)} MiB`],
          ['wall time', `${fmt(big.ms, 0)} ms`],
          ['daemon VmRSS / RssAnon', `${mib(daemonMem.rss)} / ${mib(daemonMem.anon)} MiB`],
          ['time to start them (`up -d`)', `100: ${fmt(up100 / 1000, 1)} s, to 1000: ${fmt(up1000 / 1000, 1)} s, to ${maxCount}: ${fmt(upMax / 1000, 1)} s`],
        ],
      ),
      '',
    );
    notes.push(`Verdict (\`tend ps --json\` lists all ${maxCount}): ${listed === maxCount && big.status === 0 ? 'MET' : 'NOT MET'}`);
    costRows.push(await daemonSide(maxCount, 3));
  } catch (error) {
    failure = error instanceof Error ? (error.stack ?? error.message) : String(error);
  } finally {
    if (costRows.length > 0) {
      out.push(
        '### The daemon\'s cost of `ps`: `ps` minus `ping` over one socket connection (interleaved, medians)',
        '',
        table(['services', 'listed', 'ping ms', 'ps ms', 'ps min ms', 'ps − ping ms', 'ms per service', 'per service / ping'], costRows),
        '',
      );
    }
    if (startErrors.length > 0) notes.push(`Starts that failed in \`tend up -d\` (listed by ps all the same): ${startErrors.join('; ')}`);
    await client?.close().catch(() => undefined);
    out.push('### Teardown', '', ...teardown());
  }
  if (notes.length) out.push('', '### Verdicts', '', ...notes.map((n) => `- ${n}`));
  if (failure !== undefined) {
    out.push('', `**benchmark failed**: ${failure}`);
    process.exitCode = 1;
  }
  return out.join('\n');

  /** tend kill-all + daemon stop --force, then SIGKILL whatever of ours is still alive. */
  function teardown(): string[] {
    const lines: string[] = [];
    const t0 = performance.now();
    lines.push(...stopTendDaemon((args) => tend(args, setupEnv, 600_000)));
    const left = killLeftovers(() => [...daemons.filter(stillAlive), ...ourServices()], 10_000);
    lines.push(`- left alive after the daemon was stopped (then SIGKILLed): ${left.length ? `${left.length}: ${left.slice(0, 20).map((i) => `${i.pid}(${readStat(i.pid)?.comm ?? '?'})`).join(' ')}` : 'none'}`);
    const dirs = cgroupParent ? childCgroups(cgroupParent).filter((d) => !cgroupsBefore.has(d)) : [];
    lines.push(`- new cgroups under ${cgroupParent ?? '(no cgroup parent)'}: ${dirs.length ? `${dirs.length} (other tend users may own some)` : 'none'}`);
    for (const d of [tendHome, work]) if (existsSync(d)) removeDir(d);
    lines.push(`- teardown took ${fmt((performance.now() - t0) / 1000, 1)} s; temporary directories removed`);
    return lines;
  }

  function ourServices(): Identity[] {
    return markedProcesses()
      .filter((p) => !markedBefore.has(`${p.pid}:${p.startTime}`) && cmdline(p.pid) === `sleep ${SLEEP_ARG}`)
      .map((p) => ({ pid: p.pid, startTime: p.startTime }));
  }
}

if (isMain(import.meta.url)) {
  run().then(
    (text) => process.stdout.write(`${text}\n`),
    (error: unknown) => {
      process.stderr.write(`ps-scale: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
