/**
 * Recovery of 100 stale records: the state directory holds 100 records of a
 * dead manager (the identity of a process this benchmark started and let
 * die), half with a live orphan tree (a detached `sleep 1000` carrying
 * TEND_ID=<handle>, its own process group, its real pid and start time in the
 * record), half whose tree is already gone (the identity of a process that
 * has exited). Timed:
 *   - ProcessManager.create({ stateDir }), which recovers before it returns;
 *   - `tend recover --json` (the bundled CLI) with TEND_HOME set, wall time;
 * each against the same call on an empty state directory in the same run
 * (for the CLI, that is mostly node's start-up). After each, every orphan
 * must be dead and every record gone; the tables say whether they were.
 *
 *   node dist/bench/recovery.js     (BENCH_REPS, BENCH_RECORDS to tune)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ProcessManager, type ProcessRecord, type RecoveryReport } from '../src/index.js';
import { fmt, isAlive, isMain, keepAlive, markerOf, max, median, min, procPids, rawMarkerPrefix, readStat, repoRoot, rotate, table } from './lib.js';
import { bootId, exited, identityOf, killIdentity, removeDir, stillAlive, tempDir, waitUntil, type Identity } from './lib-extra.js';

const CLI = join(repoRoot, 'dist/src/bin/tend.js');

/** Every process this benchmark spawned and has not seen exit: killed on the way out. */
const children = new Set<ChildProcess>();

function spawnSleep(env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn('/bin/sleep', ['1000'], { detached: true, stdio: 'ignore', env });
  children.add(child);
  void exited(child).then(() => children.delete(child));
  child.unref();
  return child;
}

/** Starts processes and kills them: identities of the dead (for the manager and the trees already gone). */
async function deadIdentities(n: number): Promise<Identity[]> {
  const ids: Identity[] = [];
  const procs = Array.from({ length: n }, () => spawnSleep({}));
  for (const child of procs) {
    const id = identityOf(child.pid as number);
    if (!id) throw new Error('a sleep died before its identity was read');
    ids.push(id);
  }
  for (const child of procs) child.kill('SIGKILL');
  await Promise.all(procs.map(exited));
  return ids;
}

interface Fabricated {
  readonly orphans: Identity[];
  readonly records: number;
}

/** Writes `n` records of a dead manager into `home`; the first half get a live orphan. */
async function fabricate(home: string, n: number, tag: string): Promise<Fabricated> {
  const boot = bootId();
  const liveCount = Math.ceil(n / 2);
  const [manager, ...gone] = await deadIdentities(1 + (n - liveCount));
  if (!manager) throw new Error('no manager identity');
  const orphans: { id: Identity; handle: string }[] = [];
  for (let i = 0; i < liveCount; i++) {
    const handle = `${rawMarkerPrefix}${tag}-${i}`;
    const child = spawnSleep({ TEND_ID: handle });
    const id = identityOf(child.pid as number);
    if (!id) throw new Error('an orphan died at once');
    orphans.push({ id, handle });
  }
  // The orphan must have exec'd (its environment is then the marked one), as a real tree's member has.
  const ready = await waitUntil(() => orphans.every((o) => readStat(o.id.pid)?.comm === 'sleep' && markerOf(o.id.pid) === o.handle), 10_000, 2);
  if (!ready) throw new Error('orphans never all exec’d');
  const dir = join(home, 'records');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const managerId = { pid: manager.pid, startTime: manager.startTime, bootId: boot };
  const write = (handle: string, leader: Identity): void => {
    const record: ProcessRecord = {
      schema: 1,
      handle,
      name: null,
      strategy: 'pgroup',
      cgroup: null,
      pid: leader.pid,
      startTime: leader.startTime,
      pgid: leader.pid,
      bootId: boot,
      notBefore: leader.startTime,
      manager: managerId,
      command: '/bin/sleep',
      args: ['1000'],
      startedAt: new Date().toISOString(),
    };
    writeFileSync(join(dir, `${handle}.json`), `${JSON.stringify(record)}\n`, { mode: 0o600 });
  };
  for (const o of orphans) write(o.handle, o.id);
  gone.forEach((id, i) => write(`${rawMarkerPrefix}${tag}-gone-${i}`, id));
  return { orphans: orphans.map((o) => o.id), records: n };
}

interface Outcome {
  readonly ms: number;
  /** Trees recovery reported, and members it reported killed. */
  readonly trees: number;
  readonly pids: number;
  /** Orphans still alive right after the call returned (killed by the benchmark then). */
  readonly survivors: number;
  /** Record files (or claimed leftovers) still in records/. */
  readonly recordsLeft: number;
  /** /proc entries (zombies included) just before the call: recovery scans them. */
  readonly procs: number;
}

function recordsLeft(home: string): number {
  try {
    return readdirSync(join(home, 'records')).filter((n) => n.includes('.json')).length;
  } catch {
    return 0;
  }
}

function settle(home: string, fab: Fabricated | undefined, ms: number, trees: number, pids: number, procs: number): Outcome {
  const survivors = (fab?.orphans ?? []).filter(stillAlive);
  for (const s of survivors) killIdentity(s);
  return { ms, trees, pids, survivors: survivors.length, recordsLeft: recordsLeft(home), procs };
}

async function viaCreate(home: string, fab: Fabricated | undefined): Promise<Outcome> {
  const procs = procPids().length;
  const t0 = performance.now();
  const manager = await ProcessManager.create({ stateDir: home });
  const ms = performance.now() - t0;
  const report: RecoveryReport | undefined = manager.recovery;
  const reaper = manager.reaperPid === undefined ? undefined : identityOf(manager.reaperPid);
  const outcome = settle(home, fab, ms, report?.trees.length ?? 0, report?.trees.reduce((a, t) => a + t.pids.length, 0) ?? 0, procs);
  await manager.shutdown();
  if (reaper && !(await waitUntil(() => !stillAlive(reaper), 3000, 2))) killIdentity(reaper);
  return outcome;
}

async function viaCli(home: string, fab: Fabricated | undefined): Promise<Outcome> {
  const env: NodeJS.ProcessEnv = { ...process.env, TEND_HOME: home };
  delete env.TEND_ID;
  const procs = procPids().length;
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, 'recover', '--json'], { stdio: ['ignore', 'pipe', 'inherit'], env });
  let stdout = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => (stdout += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`tend recover --json exited ${code}: ${stdout.slice(0, 500)}`);
  const report = JSON.parse(stdout) as { count: number; pids: number[] };
  return settle(home, fab, ms, report.count, report.pids.length, procs);
}

interface Mode {
  readonly key: string;
  readonly label: string;
  readonly records: number;
  once(home: string, fab: Fabricated | undefined): Promise<Outcome>;
}

export async function run(): Promise<string> {
  const release = keepAlive();
  try {
    return await measure();
  } finally {
    for (const child of children) child.kill('SIGKILL');
    release();
  }
}

async function measure(): Promise<string> {
  const reps = Number(process.env.BENCH_REPS ?? 5);
  const n = Number(process.env.BENCH_RECORDS ?? 100);
  const haveCli = existsSync(CLI);
  const modes: Mode[] = [
    { key: 'create-empty', label: '`ProcessManager.create()`, empty state dir', records: 0, once: viaCreate },
    { key: 'create-full', label: `\`ProcessManager.create()\`, ${n} stale records`, records: n, once: viaCreate },
  ];
  if (haveCli) {
    modes.push({ key: 'cli-empty', label: '`tend recover --json`, empty state dir', records: 0, once: viaCli });
    modes.push({ key: 'cli-full', label: `\`tend recover --json\`, ${n} stale records`, records: n, once: viaCli });
  }
  const results: Record<string, Outcome[]> = Object.fromEntries(modes.map((m) => [m.key, [] as Outcome[]]));
  const prep: number[] = [];
  let counter = 0;
  const once = async (m: Mode): Promise<Outcome> => {
    const home = tempDir('recovery');
    try {
      const t = performance.now();
      const fab = m.records ? await fabricate(home, m.records, `rec${counter++}`) : undefined;
      if (fab) prep.push(performance.now() - t);
      return await m.once(home, fab);
    } finally {
      removeDir(home);
    }
  };
  for (const m of modes) await once(m); // warm-up, not counted
  for (let rep = 0; rep < reps; rep++) for (const m of rotate(modes, rep)) results[m.key]?.push(await once(m));

  const out: string[] = [];
  const live = Math.ceil(n / 2);
  out.push(`### Recovery of ${n} stale records (${live} with a live orphan \`sleep\`, ${n - live} already gone; pgroup records of a dead manager), ${reps} reps, order rotated, node ${process.version}`, '');
  const med = (key: string): number => median((results[key] ?? []).map((o) => o.ms));
  const rows = modes.map((m) => {
    const os = results[m.key] ?? [];
    const ms = os.map((o) => o.ms);
    const emptyKey = m.key.replace('full', 'empty');
    const extra = m.records ? med(m.key) - med(emptyKey) : NaN;
    return [
      m.label,
      fmt(median(ms)),
      fmt(min(ms)),
      fmt(max(ms)),
      m.records ? fmt(extra) : '—',
      m.records ? fmt(extra / m.records, 3) : '—',
      m.records ? fmt(med(m.key) / med(emptyKey)) : '1.00',
      m.records ? fmt(median(os.map((o, i) => (1000 * (o.ms - (results[emptyKey]?.[i]?.ms ?? 0))) / (m.records * o.procs))), 1) : '—',
      os.map((o) => `${o.trees}/${o.pids}`).join(' '),
      String(os.reduce((a, o) => a + o.survivors, 0)),
      String(os.reduce((a, o) => a + o.recordsLeft, 0)),
    ];
  });
  out.push(
    table(
      [
        'call',
        'median ms',
        'min',
        'max',
        'recovery ms (median − empty median)',
        'ms per record',
        '× empty',
        'µs per record per /proc entry',
        'trees/pids reported per rep',
        `orphans alive after (sum, want 0)`,
        'records left (sum, want 0)',
      ],
      rows,
    ),
    '',
  );
  const procs = Object.values(results).flatMap((os) => os.map((o) => o.procs));
  out.push(`/proc entries before each call (zombies included; recovery reads each at least once): median ${median(procs)}, ${min(procs)}–${max(procs)}`);
  for (const m of modes) {
    if (m.records) out.push(`per rep ${m.key}: ${(results[m.key] ?? []).map((o) => `${fmt(o.ms, 0)} ms @ ${o.procs} /proc entries`).join(', ')}`);
  }
  out.push(`fabricating ${n} records and ${live} orphans (not timed): median ${fmt(median(prep), 0)} ms`);
  if (!haveCli) out.push(`skipped: ${CLI} is not built`);
  const left = procPids().filter((pid) => markerOf(pid)?.startsWith(rawMarkerPrefix) && isAlive(readStat(pid)));
  out.push(`Left behind by this benchmark: processes ${left.length ? left.join(' ') : 'none'}`);
  return out.join('\n');
}

if (isMain(import.meta.url)) {
  run().then(
    (text) => process.stdout.write(`${text}\n`),
    (error: unknown) => {
      process.stderr.write(`recovery: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
