/**
 * What tend-reaper costs: its memory idle with 0, 100 and 1000 registered
 * trees, its start time, and what starting it adds to ProcessManager.create().
 *
 * - Memory: the reaper binary is spawned directly, as the manager spawns it
 *   (own session, a pipe on stdin, --log and --manager <this process>), and
 *   given N `R <handle> pgroup -` lines, then one line it must reject
 *   ("X ..."): the "protocol-error" that line writes to the log proves every
 *   registration before it was processed. VmRSS (and Pss, which does not
 *   charge shared libc pages to it) is read from /proc after it has idled.
 *   `sleep 1000` is the floor: the smallest program this machine runs.
 * - Start: spawn → exit of `tend-reaper --version` against spawn → exit of
 *   /bin/true (interleaved), and spawn → first registration processed (the
 *   rejected line after it shows up in the log).
 * - ProcessManager.create() with the reaper against `reaper: false`
 *   (interleaved, empty state directory), the cost every embedding program pays.
 *
 *   node dist/bench/reaper-cost.js     (BENCH_START_RUNS, BENCH_REG_RUNS, BENCH_CREATE_RUNS, BENCH_RSS_REPS to tune)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ProcessManager } from '../src/index.js';
import { blockFor, fmt, isMain, keepAlive, max, median, min, readStat, repoRoot, sleep, table } from './lib.js';
import { exited, identityOf, killIdentity, memoryStatus, percentile, removeDir, stillAlive, tempDir, waitUntil, type Identity } from './lib-extra.js';

const REAPER = join(repoRoot, 'native/bin/tend-reaper');
const COUNTS = [0, 100, 1000] as const;
const TARGET_RSS_KIB = 5 * 1024;
const TARGET_START_MS = 10;
const IDLE_MS = 200;

/** Reapers this benchmark started: killed on the way out if one is still running. */
const started = new Set<ChildProcess>();

function spawnReaper(logPath: string): ChildProcess {
  const self = readStat(process.pid);
  const child = spawn(REAPER, ['--log', logPath, '--manager', `${process.pid}:${self?.startTime ?? 0}`], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
    env: {},
  });
  child.stdin?.on('error', () => undefined);
  started.add(child);
  void exited(child).then(() => started.delete(child));
  return child;
}

/** The log holds the line rejected for `sentinel`: everything written before it has been processed. */
function sentinelSeen(logPath: string, sentinel: string): boolean {
  try {
    return readFileSync(logPath, 'latin1').includes(sentinel);
  } catch {
    return false;
  }
}

function pssKiB(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

interface Memory {
  readonly rss: number;
  readonly anon: number;
  readonly file: number;
  readonly hwm: number;
  readonly pss: number;
  /** ms from end of input until the reaper exited (it cleans up every registration first). */
  readonly teardownMs: number;
}

async function reaperMemory(count: number, dir: string, rep: number): Promise<Memory> {
  const logPath = join(dir, `rss-${count}-${rep}.log`);
  const child = spawnReaper(logPath);
  const gone = exited(child);
  const lines: string[] = [];
  for (let i = 0; i < count; i++) lines.push(`R benchrss${process.pid}x${rep}x${i} pgroup -\n`);
  const sentinel = `benchsentinel${rep}x${count}`;
  lines.push(`X ${sentinel}\n`);
  child.stdin?.write(lines.join(''));
  if (!(await waitUntil(() => sentinelSeen(logPath, sentinel), 5000, 1))) throw new Error(`reaper never processed ${count} registrations`);
  await sleep(IDLE_MS);
  const pid = child.pid as number;
  const status = memoryStatus(pid);
  const pss = pssKiB(pid);
  const t0 = performance.now();
  child.stdin?.end();
  await gone;
  const teardownMs = performance.now() - t0;
  return { rss: status.VmRSS ?? NaN, anon: status.RssAnon ?? NaN, file: status.RssFile ?? NaN, hwm: status.VmHWM ?? NaN, pss, teardownMs };
}

async function sleepMemory(): Promise<Memory> {
  const child = spawn('/bin/sleep', ['1000'], { stdio: 'ignore' });
  const gone = exited(child);
  await sleep(IDLE_MS);
  const pid = child.pid as number;
  const status = memoryStatus(pid);
  const pss = pssKiB(pid);
  child.kill('SIGKILL');
  await gone;
  return { rss: status.VmRSS ?? NaN, anon: status.RssAnon ?? NaN, file: status.RssFile ?? NaN, hwm: status.VmHWM ?? NaN, pss, teardownMs: NaN };
}

/** spawn → exit event, ms. */
async function spawnToExit(file: string, args: readonly string[]): Promise<number> {
  const t0 = performance.now();
  const child = spawn(file, args, { stdio: 'ignore' });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${code}`);
  return ms;
}

/** spawn → the first registration processed (ms), and end of input → exit (ms). */
async function firstRegistration(dir: string, i: number): Promise<{ ms: number; teardownMs: number }> {
  const logPath = join(dir, `first-${i}.log`);
  const sentinel = `benchfirst${i}`;
  const t0 = performance.now();
  const child = spawnReaper(logPath);
  const gone = exited(child);
  // libuv writes at once while the pipe's queue is empty (what ReaperLink.register relies on too).
  child.stdin?.write(`R benchfirst${process.pid}x${i} pgroup -\nX ${sentinel}\n`);
  const deadline = t0 + 5000;
  while (!sentinelSeen(logPath, sentinel)) {
    if (performance.now() > deadline) throw new Error('reaper never processed its first registration');
    blockFor(0.05);
  }
  const ms = performance.now() - t0;
  const t1 = performance.now();
  child.stdin?.end();
  await gone;
  return { ms, teardownMs: performance.now() - t1 };
}

async function createOnce(stateDir: string, reaper: boolean): Promise<number> {
  const t0 = performance.now();
  const manager = await ProcessManager.create({ stateDir, reaper });
  const ms = performance.now() - t0;
  const reaperId: Identity | undefined = manager.reaperPid === undefined ? undefined : identityOf(manager.reaperPid);
  if (reaper && manager.reaperPid === undefined) throw new Error('create() started no reaper');
  await manager.shutdown();
  // The reaper sees end of input, finds nothing registered and exits: wait, so reapers never pile up.
  if (reaperId && !(await waitUntil(() => !stillAlive(reaperId), 3000, 2))) {
    killIdentity(reaperId);
    throw new Error(`reaper ${reaperId.pid} did not exit after shutdown()`);
  }
  return ms;
}

export async function run(): Promise<string> {
  if (!existsSync(REAPER)) return `skipped: ${REAPER} is not built`;
  const release = keepAlive();
  const dir = tempDir('reaper-cost');
  try {
    return await measure(dir);
  } finally {
    for (const child of started) child.kill('SIGKILL');
    removeDir(dir);
    release();
  }
}

async function measure(dir: string): Promise<string> {
  const startRuns = Number(process.env.BENCH_START_RUNS ?? 200);
  const regRuns = Number(process.env.BENCH_REG_RUNS ?? 100);
  const createRuns = Number(process.env.BENCH_CREATE_RUNS ?? 50);
  const rssReps = Number(process.env.BENCH_RSS_REPS ?? 3);
  const out: string[] = [];

  // Memory.
  const mem: Record<string, Memory[]> = { sleep: [], ...Object.fromEntries(COUNTS.map((c) => [String(c), [] as Memory[]])) };
  for (let rep = 0; rep < rssReps; rep++) {
    mem.sleep?.push(await sleepMemory());
    for (const c of COUNTS) mem[String(c)]?.push(await reaperMemory(c, dir, rep));
  }
  const floor = median((mem.sleep ?? []).map((m) => m.rss));
  const memRow = (label: string, ms: Memory[], target: boolean): string[] => {
    const rss = median(ms.map((m) => m.rss));
    return [
      label,
      `${fmt(rss / 1024)} MiB (${fmt(rss, 0)} KiB)`,
      fmt(min(ms.map((m) => m.rss)), 0),
      fmt(max(ms.map((m) => m.rss)), 0),
      fmt(median(ms.map((m) => m.anon)), 0),
      fmt(median(ms.map((m) => m.file)), 0),
      fmt(median(ms.map((m) => m.hwm)), 0),
      fmt(median(ms.map((m) => m.pss)), 0),
      fmt(rss / floor),
      target ? `≤ 5 MiB: ${rss <= TARGET_RSS_KIB ? 'within' : 'over'} (${fmt(rss / TARGET_RSS_KIB)} of target)` : '—',
      label.startsWith('sleep') ? '—' : fmt(median(ms.map((m) => m.teardownMs))),
    ];
  };
  out.push(`### tend-reaper memory, idle ${IDLE_MS} ms after its registrations were processed (${rssReps} reps each; KiB unless stated)`, '');
  out.push(
    table(
      ['process', 'VmRSS median', 'min', 'max', 'RssAnon', 'RssFile', 'VmHWM', 'Pss', '× sleep RSS', 'target', 'end of input → exit ms (cleans every registration)'],
      [memRow('`sleep 1000` (floor)', mem.sleep ?? [], false), ...COUNTS.map((c) => memRow(`tend-reaper, ${c} registrations`, mem[String(c)] ?? [], true))],
    ),
    '',
  );

  // Start time, interleaved.
  const version: number[] = [];
  const trueMs: number[] = [];
  await spawnToExit(REAPER, ['--version']);
  await spawnToExit('/bin/true', []);
  for (let i = 0; i < startRuns; i++) {
    if (i % 2 === 0) {
      version.push(await spawnToExit(REAPER, ['--version']));
      trueMs.push(await spawnToExit('/bin/true', []));
    } else {
      trueMs.push(await spawnToExit('/bin/true', []));
      version.push(await spawnToExit(REAPER, ['--version']));
    }
  }
  const first: number[] = [];
  const firstTeardown: number[] = [];
  await firstRegistration(dir, -1);
  for (let i = 0; i < regRuns; i++) {
    const r = await firstRegistration(dir, i);
    first.push(r.ms);
    firstTeardown.push(r.teardownMs);
  }
  const trueMed = median(trueMs);
  const startRow = (label: string, ms: number[], target: boolean): string[] => {
    const med = median(ms);
    return [
      label,
      String(ms.length),
      fmt(med),
      fmt(percentile(ms, 95)),
      fmt(min(ms)),
      fmt(max(ms)),
      fmt(med / trueMed),
      target ? `≤ ${TARGET_START_MS} ms: ${med <= TARGET_START_MS ? 'within' : 'over'} (${fmt(med / TARGET_START_MS)} of target)` : '—',
    ];
  };
  out.push(`### tend-reaper start (node spawn → event), node ${process.version}`, '');
  out.push(
    table(
      ['what', 'runs', 'median ms', 'p95', 'min', 'max', '× /bin/true', 'target (median)'],
      [
        startRow('spawn → exit of `/bin/true` (baseline)', trueMs, false),
        startRow('spawn → exit of `tend-reaper --version`', version, true),
        startRow('spawn → first registration processed (pipe + --log + --manager)', first, true),
        startRow('  then end of input → exit (1 registration, nothing alive)', firstTeardown, false),
      ],
    ),
    '',
  );

  // ProcessManager.create(), interleaved.
  const stateDir = join(dir, 'home');
  const withReaper: number[] = [];
  const without: number[] = [];
  await createOnce(stateDir, true);
  await createOnce(stateDir, false);
  for (let i = 0; i < createRuns; i++) {
    if (i % 2 === 0) {
      withReaper.push(await createOnce(stateDir, true));
      without.push(await createOnce(stateDir, false));
    } else {
      without.push(await createOnce(stateDir, false));
      withReaper.push(await createOnce(stateDir, true));
    }
  }
  const noMed = median(without);
  const createRow = (label: string, ms: number[]): string[] => [label, String(ms.length), fmt(median(ms)), fmt(percentile(ms, 95)), fmt(min(ms)), fmt(max(ms)), fmt(median(ms) / noMed)];
  out.push(`### ProcessManager.create() on an empty state directory (interleaved)`, '');
  out.push(
    table(
      ['options', 'runs', 'median ms', 'p95', 'min', 'max', '× reaper: false'],
      [createRow('`{ stateDir }` (reaper started)', withReaper), createRow('`{ stateDir, reaper: false }`', without)],
    ),
    '',
  );
  out.push(`create() cost of the reaper: median ${fmt(median(withReaper) - noMed)} ms per manager (create() returns once the reaper is spawned; it does not wait for it to exec)`);
  const left = [...started].filter((c) => c.exitCode === null && c.signalCode === null).map((c) => c.pid);
  out.push(`Left behind by this benchmark: reapers ${left.length ? left.join(' ') : 'none'}`);
  return out.join('\n');
}

if (isMain(import.meta.url)) {
  run().then(
    (text) => process.stdout.write(`${text}\n`),
    (error: unknown) => {
      process.stderr.write(`reaper-cost: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
