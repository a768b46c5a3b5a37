/**
 * Manager SIGKILL → every member gone, per strategy (cgroup, pgroup, pidns).
 *
 * Each trial starts a host program (generated into a temporary directory) that
 * creates a ProcessManager with a temporary TEND_HOME, starts the tree
 *   sh -c 'sleep 1000 & (setsid sleep 1000 &); sleep 1000'
 * (sh, a background sleep, a sleep that left the session with setsid, a
 * foreground sleep; plus tend's own launcher where the strategy has one), and
 * prints the handle and "ready" once every member exists. The benchmark then
 * SIGKILLs the host and polls /proc until no live process carries
 * TEND_ID=<handle> (zombies count as gone: they run no code). The poll reads
 * the members' /proc/<pid>/stat every 0.5 ms and, once they are all gone,
 * confirms with a full /proc scan for the marker (a member forked after the
 * snapshot would show up there and be waited for too).
 *
 * For context the same trial runs with `reaper: false`: what survives 1 s
 * after the SIGKILL shows what the reaper adds (the survivors are then killed
 * by the benchmark).
 *
 *   node dist/bench/manager-kill.js     (BENCH_TRIALS, BENCH_NOREAPER_TRIALS to tune)
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { detect, type StrategyName } from '../src/index.js';
import { blockFor, fmt, isMain, markedProcesses, max, median, min, procPids, repoRoot, rotate, sleep, table } from './lib.js';
import { exited, identityOf, killIdentity, lineReader, percentile, removeDir, stillAlive, tempDir, waitUntil, type Identity } from './lib-extra.js';

const TREE = 'sleep 1000 & (setsid sleep 1000 &); sleep 1000';
const WANT_SLEEP = 3;
const READY_TIMEOUT_MS = 20_000;
const GONE_TIMEOUT_MS = 5_000;
const REAPER_EXIT_TIMEOUT_MS = 3_000;
const NO_REAPER_WAIT_MS = 1_000;
const POLL_MS = 0.5;
const STRATEGIES: readonly StrategyName[] = ['cgroup', 'pgroup', 'pidns'];
const TARGET_P95_MS: Partial<Record<StrategyName, number>> = { cgroup: 50, pgroup: 250 };

/** The host: creates a manager (TEND_HOME from its environment), starts the tree, says "ready" once it is complete. */
const HOST = `
import { readFileSync, readdirSync } from 'node:fs';
const [libUrl, strategy, reaperFlag] = process.argv.slice(2);
const { ProcessManager } = await import(libUrl);
const manager = await ProcessManager.create({ reaper: reaperFlag === '1' });
// If the benchmark goes away, so does the host (stdin reaches end of input).
process.stdin.on('end', () => { manager.shutdown({ signal: 'SIGKILL' }).finally(() => process.exit(0)); });
process.stdin.resume();
const handle = await manager.start({ command: '/bin/sh', args: ['-c', ${JSON.stringify(TREE)}], env: { PATH: '/usr/bin:/bin' }, strategy });
process.stdout.write(JSON.stringify({ handle: handle.id, reaperPid: manager.reaperPid ?? null }) + '\\n');
const marker = 'TEND_ID=' + handle.id;
function census() {
  const count = { sh: 0, sleep: 0, other: 0 };
  for (const name of readdirSync('/proc')) {
    if (!/^\\d+$/.test(name)) continue;
    let env, stat;
    try {
      env = readFileSync('/proc/' + name + '/environ', 'latin1');
      stat = readFileSync('/proc/' + name + '/stat', 'latin1');
    } catch { continue; }
    if (!env.split('\\0').includes(marker)) continue;
    const close = stat.lastIndexOf(')');
    const state = stat[close + 2];
    if (state === 'Z' || state === 'X') continue;
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    if (comm === 'sh' || comm === 'sleep') count[comm]++; else count.other++;
  }
  return count;
}
const deadline = Date.now() + ${READY_TIMEOUT_MS - 2000};
for (;;) {
  const c = census();
  if (c.sleep === ${WANT_SLEEP} && c.sh >= 1) break;
  if (Date.now() > deadline) { process.stdout.write('timeout ' + JSON.stringify(c) + '\\n'); break; }
  await new Promise((r) => setTimeout(r, 2));
}
process.stdout.write('ready\\n');
`;

interface Trial {
  /** ms from SIGKILL of the host until no member is alive (Infinity: not within GONE_TIMEOUT_MS). */
  readonly goneMs: number;
  /** ms from SIGKILL until the reaper itself was gone (NaN without one). */
  readonly reaperMs: number;
  readonly members: number;
  /** Members alive when the trial ended (no reaper: after 1 s). */
  readonly survivors: number;
  /** The tree's cgroup directory still existed after the reaper exited. */
  readonly cgroupLeft: boolean;
  /** /proc entries when the host was killed (zombies included). */
  readonly procs: number;
}

/** Handles started by this benchmark's hosts: the final check looks at these only. */
const ownHandles = new Set<string>();
const ownCgroups = new Set<string>();

function recordOf(home: string, handle: string): { cgroup: string | null } | undefined {
  try {
    return JSON.parse(readFileSync(join(home, 'records', `${handle}.json`), 'utf8')) as { cgroup: string | null };
  } catch {
    return undefined;
  }
}

function populated(cgroup: string): boolean {
  try {
    return /^populated 1$/m.test(readFileSync(join(cgroup, 'cgroup.events'), 'latin1'));
  } catch {
    return false;
  }
}

/** Kills whatever of the tree is left (cgroup first, then every marked process) and removes its cgroup. */
async function cleanTree(handle: string, cgroup: string | null): Promise<void> {
  if (cgroup && existsSync(cgroup)) {
    try {
      writeFileSync(join(cgroup, 'cgroup.kill'), '1');
    } catch {
      /* empty or gone */
    }
    await waitUntil(() => !populated(cgroup), 2000, 2);
  }
  for (let pass = 0; pass < 20; pass++) {
    const left = markedProcesses(handle);
    if (left.length === 0) break;
    for (const p of left) killIdentity(p);
    await sleep(5);
  }
  if (cgroup && existsSync(cgroup)) {
    try {
      rmdirSync(cgroup);
    } catch (error) {
      process.stderr.write(`manager-kill: could not remove ${cgroup}: ${(error as Error).message}\n`);
    }
  }
}

async function trial(strategy: StrategyName, reaper: boolean, home: string, hostFile: string, n: number): Promise<Trial> {
  const trialHome = join(home, `t${n}`);
  mkdirSync(trialHome, { mode: 0o700 });
  const libUrl = pathToFileURL(join(repoRoot, 'dist/src/index.js')).href;
  const env: NodeJS.ProcessEnv = { ...process.env, TEND_HOME: trialHome };
  delete env.TEND_ID;
  const host = spawn(process.execPath, [hostFile, libUrl, strategy, reaper ? '1' : '0'], { stdio: ['pipe', 'pipe', 'inherit'], env });
  const hostGone = exited(host);
  let handle: string | undefined;
  let cgroup: string | null = null;
  try {
    const lines = lineReader(host);
    const info = JSON.parse(await lines.next(READY_TIMEOUT_MS)) as { handle: string; reaperPid: number | null };
    handle = info.handle;
    ownHandles.add(handle);
    cgroup = recordOf(trialHome, handle)?.cgroup ?? null;
    if (cgroup) ownCgroups.add(cgroup);
    const ready = await lines.next(READY_TIMEOUT_MS);
    if (ready !== 'ready') throw new Error(`${strategy}: host said ${JSON.stringify(ready)}`);
    // Let the shells settle (the subshell of "( ... &)" exits right after forking).
    await sleep(20);
    let members: Identity[] = markedProcesses(handle).map(({ pid, startTime }) => ({ pid, startTime }));
    const memberCount = members.length;
    const reaperId = info.reaperPid === null ? undefined : identityOf(info.reaperPid);
    if (reaper && !reaperId) throw new Error(`${strategy}: host has no live reaper`);
    const procs = procPids().length;

    const t0 = performance.now();
    process.kill(host.pid as number, 'SIGKILL');
    let goneMs = Infinity;
    let reaperMs = NaN;
    if (reaper) {
      const deadline = t0 + GONE_TIMEOUT_MS;
      for (;;) {
        if (members.some(stillAlive)) {
          if (performance.now() > deadline) break;
          blockFor(POLL_MS);
          continue;
        }
        const now = performance.now();
        const late = markedProcesses(handle);
        if (late.length === 0) {
          goneMs = now - t0;
          break;
        }
        members = late.map(({ pid, startTime }) => ({ pid, startTime }));
      }
      const reaperDeadline = t0 + REAPER_EXIT_TIMEOUT_MS;
      while (reaperId && stillAlive(reaperId) && performance.now() < reaperDeadline) blockFor(POLL_MS);
      if (reaperId && !stillAlive(reaperId)) reaperMs = performance.now() - t0;
    } else {
      await sleep(NO_REAPER_WAIT_MS);
    }
    const survivors = markedProcesses(handle).length;
    await hostGone;
    if (reaperId && stillAlive(reaperId)) {
      await waitUntil(() => !stillAlive(reaperId), REAPER_EXIT_TIMEOUT_MS);
      if (killIdentity(reaperId)) process.stderr.write(`manager-kill: reaper ${reaperId.pid} still running after ${REAPER_EXIT_TIMEOUT_MS} ms; killed it\n`);
    }
    const cgroupLeft = cgroup !== null && existsSync(cgroup);
    return { goneMs, reaperMs, members: memberCount, survivors, cgroupLeft, procs };
  } finally {
    if (host.exitCode === null && host.signalCode === null) host.kill('SIGKILL');
    await hostGone;
    if (handle) await cleanTree(handle, cgroup);
    removeDir(trialHome);
  }
}

export async function run(options: { trials?: number; noReaperTrials?: number } = {}): Promise<string> {
  const trials = options.trials ?? Number(process.env.BENCH_TRIALS ?? 50);
  const noReaperTrials = options.noReaperTrials ?? Number(process.env.BENCH_NOREAPER_TRIALS ?? 3);
  const caps = detect();
  const strategies = STRATEGIES.filter((s) => caps.strategies[s].available);
  const skipped = STRATEGIES.filter((s) => !caps.strategies[s].available).map((s) => `${s}: ${caps.strategies[s].reason}`);
  const home = tempDir('manager-kill');
  const hostFile = join(home, 'host.mjs');
  writeFileSync(hostFile, HOST);
  const results: Record<string, Trial[]> = Object.fromEntries(strategies.map((s) => [s, [] as Trial[]]));
  const noReaper: Record<string, Trial[]> = Object.fromEntries(strategies.map((s) => [s, [] as Trial[]]));
  let n = 0;
  const scanMs: number[] = [];
  try {
    for (const s of strategies) await trial(s, true, home, hostFile, n++); // warm-up, not counted
    for (let round = 0; round < trials; round++) {
      for (const s of rotate(strategies, round)) results[s]?.push(await trial(s, true, home, hostFile, n++));
    }
    for (let round = 0; round < noReaperTrials; round++) {
      for (const s of rotate(strategies, round)) noReaper[s]?.push(await trial(s, false, home, hostFile, n++));
    }
    // What one full /proc marker scan costs here: the resolution of the final confirmation.
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      markedProcesses('bench-no-such-handle');
      scanMs.push(performance.now() - t);
    }
  } finally {
    removeDir(home);
  }

  const out: string[] = [];
  out.push(`### Manager SIGKILL → every member gone (tree \`sh -c '${TREE}'\`), ${trials} trials per strategy, order rotated, node ${process.version}`, '');
  const cgroupP95 = percentile((results.cgroup ?? []).map((t) => t.goneMs), 95);
  const rows = strategies.map((s) => {
    const ts = results[s] ?? [];
    const ms = ts.filter((t) => Number.isFinite(t.goneMs)).map((t) => t.goneMs);
    const p95 = percentile(ts.map((t) => t.goneMs), 95);
    const target = TARGET_P95_MS[s];
    const targetCell = target === undefined ? '—' : `≤ ${target} ms: ${p95 <= target ? 'within' : 'over'} (p95/target ${fmt(p95 / target)})`;
    const reaperMs = ts.map((t) => t.reaperMs).filter(Number.isFinite);
    return [
      s,
      String(ts.length),
      fmt(median(ms)),
      fmt(p95),
      fmt(min(ms)),
      fmt(max(ms)),
      targetCell,
      s === 'cgroup' || !Number.isFinite(cgroupP95) ? '1.00' : fmt(p95 / cgroupP95),
      String(median(ts.map((t) => t.members))),
      String(ts.filter((t) => !Number.isFinite(t.goneMs)).length),
      String(ts.reduce((a, t) => a + t.survivors, 0)),
      fmt(median(reaperMs), 1),
      String(ts.filter((t) => t.cgroupLeft).length),
    ];
  });
  out.push(
    table(
      [
        'strategy',
        'trials',
        'median ms',
        'p95 ms',
        'min',
        'max',
        'target (p95)',
        'p95 × cgroup p95',
        'members (median)',
        `not gone in ${GONE_TIMEOUT_MS / 1000} s`,
        'alive at end (sum)',
        'reaper exited, median ms',
        'cgroup dirs left',
      ],
      rows,
    ),
    '',
  );
  out.push(`### Same trial with \`reaper: false\` (context: what the reaper adds), ${noReaperTrials} trials per strategy`, '');
  const nrRows = strategies.map((s) => {
    const ts = noReaper[s] ?? [];
    const members = ts.reduce((a, t) => a + t.members, 0);
    const alive = ts.reduce((a, t) => a + t.survivors, 0);
    return [s, String(ts.length), String(members), `${alive} (${fmt((100 * alive) / Math.max(1, members), 0)} %)`, ts.map((t) => String(t.survivors)).join(' ')];
  });
  out.push(table(['strategy', 'trials', 'members (sum)', `alive ${NO_REAPER_WAIT_MS / 1000} s after SIGKILL (sum)`, 'per trial'], nrRows), '');
  out.push(`(survivors of the \`reaper: false\` trials were killed by the benchmark afterwards)`);
  const procs = Object.values(results).flatMap((ts) => ts.map((t) => t.procs));
  out.push(
    `poll: members' /proc/<pid>/stat every ${POLL_MS} ms, then a full /proc marker scan (median ${fmt(median(scanMs))} ms, max ${fmt(max(scanMs))} ms here) to confirm; /proc entries at the kill (zombies included): median ${median(procs)}, ${min(procs)}–${max(procs)}`,
  );
  if (skipped.length) out.push(`skipped: ${skipped.join('; ')}`);
  out.push(finalCheck());
  return out.join('\n');
}

function finalCheck(): string {
  const procs: string[] = [];
  for (const handle of ownHandles) for (const p of markedProcesses(handle)) procs.push(`${p.pid}(${p.comm})`);
  const dirs = [...ownCgroups].filter((d) => existsSync(d));
  return `Left behind by this benchmark: processes ${procs.length ? procs.join(' ') : 'none'}; cgroups ${dirs.length ? dirs.join(' ') : 'none'}`;
}

if (isMain(import.meta.url)) {
  run().then(
    (text) => process.stdout.write(`${text}\n`),
    (error: unknown) => {
      process.stderr.write(`manager-kill: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
