/**
 * Start + exit of /bin/true: raw child_process.spawn against tend's
 * manager.start() → handle.wait(), per strategy. Sequential and 16 in flight.
 * Rounds interleave every mode (rotating the order) so drift cancels; the
 * table shows medians of per-spawn cost and ratios to the same run's raw spawn.
 *
 *   node dist/bench/start-overhead.js     (BENCH_SPAWNS, BENCH_ROUNDS to tune)
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { ProcessManager, type StrategyName } from '../src/index.js';
import { fmt, isMain, keepAlive, leftoverReport, median, rotate, table, track } from './lib.js';

interface Mode {
  readonly key: string;
  readonly label: string;
  /** Target ratio to raw spawn, when there is one. */
  readonly target: number | undefined;
  once(): Promise<void>;
}

const TRUE = '/bin/true';

function rawSpawn(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(TRUE, [], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`/bin/true exited ${code}`))));
  });
}

/** The spawn options tend itself uses: own session, a one-variable environment. */
function rawSpawnLikeTend(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(TRUE, [], { stdio: 'ignore', detached: true, env: { TEND_ID: 'bench-raw-like-tend' } });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`/bin/true exited ${code}`))));
  });
}

function tendMode(manager: ProcessManager, strategy: StrategyName, parentDeathSignal: boolean): () => Promise<void> {
  return async () => {
    const handle = await manager.start({ command: TRUE, strategy, ...(parentDeathSignal ? {} : { parentDeathSignal: false }) });
    const status = await handle.wait();
    if (status.state !== 'exited' || status.exitCode !== 0) throw new Error(`tend ${strategy}: /bin/true ended ${JSON.stringify(status)}`);
  };
}

async function batch(mode: Mode, n: number, concurrency: number): Promise<number> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      await mode.once();
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return performance.now() - t0;
}

export interface StartOverheadOptions {
  readonly spawns?: number;
  readonly rounds?: number;
  readonly concurrency?: number;
}

export async function run(options: StartOverheadOptions = {}): Promise<string> {
  const release = keepAlive();
  try {
    return await measure(options);
  } finally {
    release();
  }
}

async function measure(options: StartOverheadOptions = {}): Promise<string> {
  const n = options.spawns ?? Number(process.env.BENCH_SPAWNS ?? 150);
  const rounds = options.rounds ?? Number(process.env.BENCH_ROUNDS ?? 7);
  const concurrency = options.concurrency ?? 16;
  const manager = await ProcessManager.create();
  track(manager);
  const caps = manager.capabilities();
  const modes: Mode[] = [
    { key: 'raw', label: 'raw `child_process.spawn` (stdio ignore)', target: undefined, once: rawSpawn },
    { key: 'raw-like-tend', label: 'raw spawn with tend\'s options (detached, 1-variable env)', target: undefined, once: rawSpawnLikeTend },
  ];
  const wanted: { strategy: StrategyName; pdeath: boolean; target: number | undefined }[] = [
    { strategy: 'pgroup', pdeath: true, target: 1.2 },
    { strategy: 'pgroup', pdeath: false, target: 1.2 },
    { strategy: 'cgroup', pdeath: true, target: 1.5 },
    { strategy: 'pidns', pdeath: true, target: undefined },
  ];
  const skipped: string[] = [];
  for (const w of wanted) {
    const key = `${w.strategy}${w.pdeath ? '' : '-nopdeath'}`;
    if (!caps.strategies[w.strategy].available) {
      skipped.push(`${key}: ${caps.strategies[w.strategy].reason}`);
      continue;
    }
    modes.push({
      key,
      label: `tend ${w.strategy}${w.pdeath ? '' : ', parentDeathSignal: false'}`,
      target: w.target,
      once: tendMode(manager, w.strategy, w.pdeath),
    });
  }

  // Warm-up: capability probes, JIT, page cache.
  for (const mode of modes) await batch(mode, 20, 1);

  const out: string[] = [];
  out.push(
    `### Start + exit of /bin/true: ${n} per batch, ${rounds} rounds interleaved (median batch time / ${n}), node ${process.version}, pdeath via ${caps.parentDeathSignal.via}`,
    '',
  );
  const perRound: Record<string, Record<string, number[]>> = {};
  const times: Record<string, Record<string, number[]>> = {};
  for (const [phase, conc] of [
    ['sequential', 1],
    [`${concurrency} concurrent`, concurrency],
  ] as const) {
    times[phase] = Object.fromEntries(modes.map((m) => [m.key, [] as number[]]));
    perRound[phase] = Object.fromEntries(modes.map((m) => [m.key, [] as number[]]));
    for (let r = 0; r < rounds; r++) {
      const round: Record<string, number> = {};
      for (const mode of rotate(modes, r)) round[mode.key] = (await batch(mode, n, conc)) / n;
      for (const mode of modes) {
        (times[phase][mode.key] as number[]).push(round[mode.key] as number);
        (perRound[phase][mode.key] as number[]).push((round[mode.key] as number) / (round.raw as number));
      }
    }
  }

  const rows: string[][] = [];
  for (const phase of Object.keys(times)) {
    const rawMed = median(times[phase]?.raw ?? []);
    for (const mode of modes) {
      const med = median(times[phase]?.[mode.key] ?? []);
      const ratio = med / rawMed;
      const roundRatio = median(perRound[phase]?.[mode.key] ?? []);
      const target = mode.target === undefined ? '—' : `≤${mode.target}×`;
      const within = mode.target === undefined ? '' : ratio <= mode.target ? ' (within)' : ' (over)';
      rows.push([phase, mode.label, fmt(med, 3), mode.key === 'raw' ? '1.00' : fmt(ratio), mode.key === 'raw' ? '1.00' : fmt(roundRatio), `${target}${within}`]);
    }
  }
  out.push(table(['mode', 'method', 'ms/spawn (median)', '× raw (ratio of medians)', 'median per-round ratio', 'target'], rows), '');
  for (const phase of Object.keys(perRound)) {
    for (const mode of modes) {
      if (mode.key === 'raw') continue;
      out.push(`per-round ${mode.key}/raw ratios, ${phase}: ${(perRound[phase]?.[mode.key] ?? []).map((x) => fmt(x)).join(' ')}`);
    }
  }
  out.push('');
  out.push(`reference (PEERS.md, this kind of machine): execa/raw 1.59 sequential, 1.72 at 16 concurrent`);
  if (skipped.length) out.push(`skipped (unavailable here): ${skipped.join('; ')}`);
  await manager.shutdown();
  out.push(leftoverReport(caps.cgroup?.parent));
  return out.join('\n');
}

if (isMain(import.meta.url)) {
  run().then(
    (text) => process.stdout.write(`${text}\n`),
    (error: unknown) => {
      process.stderr.write(`start-overhead: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
