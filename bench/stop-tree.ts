/**
 * Stop a 100-process tree that honours SIGTERM (1 sh + 9 sh + 90 sleep):
 * tend's handle.stop() per strategy against two raw kernel baselines measured
 * in the same run:
 *   - a raw cgroup v2: the child joins before exec, then cgroup.kill, timed
 *     until cgroup.events says "populated 0";
 *   - a raw process group: detached spawn, kill(-pgid, SIGKILL), timed until
 *     no member is alive in /proc.
 * Every tree is complete (10 sh and 90 sleep, all exec'd) before the clock
 * starts. Time = from the call until every member is gone (zombies count as
 * gone: they run no code). Reps rotate the method order.
 *
 *   node dist/bench/stop-tree.js     (BENCH_REPS to tune)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ProcessManager, type ProcessHandle, type StrategyName } from '../src/index.js';
import {
  MARKER,
  anyLiveAmong,
  blockFor,
  benchCgroupDir,
  fmt,
  isAlive,
  isMain,
  keepAlive,
  leftoverReport,
  liveAmong,
  markedProcesses,
  max,
  median,
  min,
  procPids,
  rawMarkerPrefix,
  readStat,
  removeCgroupTree,
  rotate,
  sleep,
  table,
  track,
  zombieCount,
  type StatLine,
} from './lib.js';

const SH = '/bin/sh';
const INNER = `for j in 1 2 3 4 5 6 7 8 9 10; do sleep 1000 & done; wait`;
/** 1 sh → 9 sh → 10 sleep each. */
const TREE = `for i in 1 2 3 4 5 6 7 8 9; do sh -c '${INNER}' & done; wait`;
const WANT_SH = 10;
const WANT_SLEEP = 90;
const PATH = '/usr/bin:/bin';
const READY_TIMEOUT_MS = 15_000;
const GONE_TIMEOUT_MS = 15_000;
const MAX_ZOMBIES = 100;
const ZOMBIE_WAIT_MS = 2000;

type Member = Pick<StatLine, 'pid' | 'startTime'>;

interface Rep {
  /** ms from the call until every member is gone. */
  readonly ms: number;
  /** Members still alive right after the method said "gone". */
  readonly leaked: number;
  /** Entries in /proc when the stop began (zombies included: scans read them too). */
  readonly procs: number;
}

interface Method {
  readonly key: string;
  readonly label: string;
  readonly target: number | undefined;
  once(rep: number): Promise<Rep>;
}

/** Waits until `list()` shows the whole tree (every sleep exec'd), then lets the shells settle in `wait`. */
async function waitForTree(list: () => StatLine[], what: string): Promise<Member[]> {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  for (;;) {
    const members = list().filter((s) => s.comm === 'sh' || s.comm === 'sleep');
    const sh = members.filter((s) => s.comm === 'sh').length;
    const sl = members.filter((s) => s.comm === 'sleep').length;
    if (sh === WANT_SH && sl === WANT_SLEEP) {
      await sleep(30);
      return members.map(({ pid, startTime }) => ({ pid, startTime }));
    }
    if (performance.now() > deadline) throw new Error(`${what}: tree never complete (sh ${sh}/${WANT_SH}, sleep ${sl}/${WANT_SLEEP})`);
    await sleep(5);
  }
}

/**
 * pid 1 reaps orphans late here (about every 1.3 s), and every killed tree
 * leaves ~99 zombies; the strategies that scan /proc read them all. Before a
 * timed stop, wait (bounded) until at most one tree's worth is waiting, so no
 * rep pays for a pile-up of earlier reps.
 */
async function settleZombies(): Promise<void> {
  const deadline = performance.now() + ZOMBIE_WAIT_MS;
  while (zombieCount() > MAX_ZOMBIES && performance.now() < deadline) await sleep(50);
}

function exitOf(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

function tendMethod(manager: ProcessManager, strategy: StrategyName, signal: 'SIGTERM' | 'SIGKILL', label: string, target: number | undefined, key: string): Method {
  return {
    key,
    label,
    target,
    async once(): Promise<Rep> {
      const handle: ProcessHandle = await manager.start({ command: SH, args: ['-c', TREE], env: { PATH }, strategy, stopTimeoutMs: 5000 });
      const members = await waitForTree(() => markedProcesses(handle.id), `tend ${strategy}`);
      await settleZombies();
      const procCount = procPids().length;
      const t0 = performance.now();
      const result = await handle.stop({ signal });
      const ms = performance.now() - t0;
      const leaked = liveAmong(members);
      if (signal === 'SIGTERM' && result.forced) throw new Error(`tend ${strategy}: SIGTERM stop needed SIGKILL`);
      await handle.wait();
      return { ms, leaked, procs: procCount };
    },
  };
}

function rawCgroupMethod(benchDir: string): Method {
  return {
    key: 'raw-cgroup',
    label: 'raw cgroup v2 `cgroup.kill` → `populated 0`',
    target: undefined,
    async once(rep: number): Promise<Rep> {
      const dir = join(benchDir, `rep-${rep}`);
      mkdirSync(dir);
      const procs = join(dir, 'cgroup.procs');
      // Join before exec: the shell moves itself, then becomes the tree's root.
      const child = spawn(SH, ['-c', 'echo 0 > "$0" && exec sh -c "$1"', procs, TREE], {
        stdio: 'ignore',
        env: { PATH, [MARKER]: `${rawMarkerPrefix}cgroup-${rep}` },
      });
      const exited = exitOf(child);
      const list = (): StatLine[] =>
        readFileSync(procs, 'latin1')
          .split('\n')
          .filter(Boolean)
          .map((p) => readStat(Number(p)))
          .filter(isAlive);
      const members = await waitForTree(list, 'raw cgroup');
      await settleZombies();
      const procCount = procPids().length;
      const events = join(dir, 'cgroup.events');
      const deadline = performance.now() + GONE_TIMEOUT_MS;
      const t0 = performance.now();
      writeFileSync(join(dir, 'cgroup.kill'), '1');
      while (!/^populated 0$/m.test(readFileSync(events, 'latin1'))) {
        if (performance.now() > deadline) throw new Error('raw cgroup: still populated');
        blockFor(0.1);
      }
      const ms = performance.now() - t0;
      const leaked = liveAmong(members);
      await exited;
      removeCgroupTree(dir);
      return { ms, leaked, procs: procCount };
    },
  };
}

/** Raw process groups not yet confirmed gone: killed on the way out if a rep fails. */
const rawGroups = new Set<number>();

function rawPgroupMethod(): Method {
  return {
    key: 'raw-pgroup',
    label: 'raw `kill(-pgid, SIGKILL)` → all gone in /proc',
    target: undefined,
    async once(rep: number): Promise<Rep> {
      const child = spawn(SH, ['-c', TREE], { stdio: 'ignore', detached: true, env: { PATH, [MARKER]: `${rawMarkerPrefix}pgroup-${rep}` } });
      const exited = exitOf(child);
      const pgid = child.pid as number;
      rawGroups.add(pgid);
      const list = (): StatLine[] => procPids().map(readStat).filter((s): s is StatLine => isAlive(s) && s.pgid === pgid);
      const members = await waitForTree(list, 'raw pgroup');
      await settleZombies();
      const procCount = procPids().length;
      const deadline = performance.now() + GONE_TIMEOUT_MS;
      const t0 = performance.now();
      process.kill(-pgid, 'SIGKILL');
      while (anyLiveAmong(members)) {
        if (performance.now() > deadline) throw new Error('raw pgroup: members still alive');
        blockFor(0.1);
      }
      const ms = performance.now() - t0;
      await exited;
      rawGroups.delete(pgid);
      return { ms, leaked: liveAmong(members), procs: procCount };
    },
  };
}

export async function run(options: { reps?: number } = {}): Promise<string> {
  const release = keepAlive();
  try {
    return await measure(options);
  } finally {
    release();
  }
}

async function measure(options: { reps?: number } = {}): Promise<string> {
  const reps = options.reps ?? Number(process.env.BENCH_REPS ?? 10);
  const manager = await ProcessManager.create();
  const fallbackManager = await ProcessManager.create({ forceCgroupKillFallback: true });
  track(manager);
  track(fallbackManager);
  const caps = manager.capabilities();
  const benchDir = benchCgroupDir();
  const methods: Method[] = [];
  const skipped: string[] = [];
  if (benchDir && caps.strategies.cgroup.available) {
    mkdirSync(benchDir);
    methods.push(rawCgroupMethod(benchDir));
  } else skipped.push('raw cgroup: no writable cgroup v2');
  methods.push(rawPgroupMethod());
  for (const strategy of ['cgroup', 'pgroup', 'pidns'] as const) {
    if (!caps.strategies[strategy].available) {
      skipped.push(`tend ${strategy}: ${caps.strategies[strategy].reason}`);
      continue;
    }
    methods.push(tendMethod(manager, strategy, 'SIGTERM', `tend ${strategy} \`stop()\` (SIGTERM, honoured)`, 1.5, `${strategy}-term`));
    methods.push(tendMethod(manager, strategy, 'SIGKILL', `tend ${strategy} \`stop({signal: 'SIGKILL'})\``, 1.5, `${strategy}-kill`));
  }
  if (caps.strategies.cgroup.available) {
    methods.push(tendMethod(fallbackManager, 'cgroup', 'SIGKILL', 'tend cgroup SIGKILL, freeze+kill-each fallback', undefined, 'cgroup-kill-fallback'));
  }
  const baseline = methods[0]?.key ?? 'raw-pgroup';

  const results: Record<string, Rep[]> = Object.fromEntries(methods.map((m) => [m.key, [] as Rep[]]));
  const ratios: Record<string, number[]> = Object.fromEntries(methods.map((m) => [m.key, [] as number[]]));
  try {
    // Warm-up: one of each, not counted.
    for (const m of methods) await m.once(-1 - methods.indexOf(m));
    let counter = 0;
    for (let rep = 0; rep < reps; rep++) {
      const round: Record<string, Rep> = {};
      for (const m of rotate(methods, rep)) round[m.key] = await m.once(counter++);
      for (const m of methods) {
        results[m.key]?.push(round[m.key] as Rep);
        ratios[m.key]?.push((round[m.key] as Rep).ms / (round[baseline] as Rep).ms);
      }
    }
  } finally {
    for (const pgid of rawGroups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await manager.shutdown({ signal: 'SIGKILL' });
    await fallbackManager.shutdown({ signal: 'SIGKILL' });
    if (benchDir) {
      // Anything a failed rep left in the raw cgroups dies with the parent's cgroup.kill.
      try {
        writeFileSync(join(benchDir, 'cgroup.kill'), '1');
      } catch {
        /* gone or empty */
      }
      for (let i = 0; i < 200 && /^populated 1$/m.test(safeRead(join(benchDir, 'cgroup.events'))); i++) await sleep(10);
      const failed = removeCgroupTree(benchDir);
      if (failed.length) process.stderr.write(`stop-tree: could not remove ${failed.join(', ')}\n`);
    }
  }

  const baseMed = median((results[baseline] ?? []).map((r) => r.ms));
  const rows = methods.map((m) => {
    const ms = (results[m.key] ?? []).map((r) => r.ms);
    const leaked = (results[m.key] ?? []).reduce((a, r) => a + r.leaked, 0);
    const med = median(ms);
    const target = m.target === undefined ? '—' : `≤${m.target}×${med / baseMed <= m.target ? ' (within)' : ' (over)'}`;
    return [m.label, fmt(med, 1), fmt(min(ms), 1), fmt(max(ms), 1), fmt(med / baseMed), fmt(median(ratios[m.key] ?? [])), target, String(leaked)];
  });
  const out: string[] = [];
  out.push(`### Stop a 100-process tree (1 sh + 9 sh + 90 sleep, honours SIGTERM): ${reps} reps each, order rotated, node ${process.version}`, '');
  out.push(
    table(
      ['method', 'median ms call → all gone', 'min', 'max', '× raw cgroup.kill (ratio of medians)', 'median per-rep ratio', 'target', 'alive after "gone" (sum)'],
      rows,
    ),
    '',
  );
  for (const m of methods) {
    if (m.key === baseline) continue;
    out.push(`per-rep ${m.key}/${baseline} ratios: ${(ratios[m.key] ?? []).map((x) => fmt(x)).join(' ')}`);
  }
  const procs = Object.values(results).flatMap((reps) => reps.map((r) => r.procs));
  out.push('', `/proc entries when a stop began (the tree's 100 and up to ${MAX_ZOMBIES} zombies awaiting pid 1 included): median ${median(procs)}, ${min(procs)}–${max(procs)}`);
  out.push(`reference (PEERS.md): cgroup.kill 7.6 ms, kill(-pgid) 8.4 ms, tree-kill SIGKILL 655 ms (85.9× cgroup.kill)`);
  if (skipped.length) out.push(`skipped: ${skipped.join('; ')}`);
  out.push(leftoverReport(caps.cgroup?.parent));
  return out.join('\n');
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return '';
  }
}

if (isMain(import.meta.url)) {
  run().then(
    (text) => process.stdout.write(`${text}\n`),
    (error: unknown) => {
      process.stderr.write(`stop-tree: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
