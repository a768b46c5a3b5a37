// Tests of the reaper (native/bin/tend-reaper) driven as a manager drives it:
// spawned detached with a pipe on stdin, fed registration lines, and then
// left, by closing the pipe or by dying. What it did is checked through /proc
// and cgroupfs, never through its own log alone. Every process started here
// carries TEND_ID=<this file's prefix>...; `after` SIGKILLs whatever is left.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess, type ChildProcessByStdio } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { cleanupByMarker } from '../helpers/cleanup.js';
import { describeProcesses, findMarked, isGone, readProcStat, scanProcesses, type ProcStat } from '../helpers/proc-scan.js';
import { waitFor, waitForExit, waitForLineInFile, waitForLineInStream } from '../helpers/wait.js';

const binDir = fileURLToPath(new URL('../../../native/bin/', import.meta.url));
const REAPER = fileURLToPath(new URL('../../../native/bin/tend-reaper', import.meta.url));
const HOST = fileURLToPath(new URL('../../../test/fixtures/reaper-host.mjs', import.meta.url));
const PREFIX = `reapertest${randomBytes(5).toString('hex')}`;
const PATH = '/usr/local/bin:/usr/bin:/bin';
const CGROUP2 = '/sys/fs/cgroup/unified';
const CGROUP2_SUPER_MAGIC = 0x63677270;
const isRoot = process.getuid?.() === 0;

const SLEEP = ['/usr/bin/sleep', '/bin/sleep'].find((p) => existsSync(p)) ?? '/bin/sleep';
/** A member that clears its environment: no marker, reachable only through its cgroup or process group. */
const UNMARKED = `env -i ${SLEEP} 1001 &`;

const tmp = mkdtempSync(`${tmpdir()}/tend-reaper-test-`);
const children = new Set<ChildProcess>();
/** Members without the marker, by pid and start time, for `after` to kill if a test left them. */
const unmarked = new Map<number, number>();
const cgroupParents: string[] = [];
let serial = 0;

/** A fresh handle; all share PREFIX, so one prefix scan finds everything this file started. */
function newHandle(): string {
  serial += 1;
  return `${PREFIX}h${serial}`;
}

function logFile(): string {
  serial += 1;
  return `${tmp}/life-${serial}.jsonl`;
}

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const [pid, start] of unmarked) {
    if (readProcStat(pid)?.startTime !== start) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
  await cleanupByMarker({ prefix: PREFIX });
  for (const parent of cgroupParents) {
    if (!existsSync(parent)) continue;
    // A failed test may have left the tree's cgroup: empty it, then remove
    // the cgroups children first.
    try {
      writeFileSync(`${parent}/cgroup.kill`, '1');
    } catch {
      /* gone meanwhile */
    }
    await waitFor(() => !/^populated 1$/m.test(readFileSync(`${parent}/cgroup.events`, 'utf8')), {
      what: `${parent} to empty`,
    }).catch(() => undefined);
    for (const dir of cgroupDirs(parent).reverse()) {
      try {
        rmdirSync(dir);
      } catch {
        /* reported by the test that left it */
      }
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

/** A cgroup and all its sub-cgroups, parents first. */
function cgroupDirs(dir: string): string[] {
  const out = [dir];
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) out.push(...cgroupDirs(`${dir}/${e.name}`));
  } catch {
    /* gone */
  }
  return out;
}

// ---------------------------------------------------------------- helpers --

interface BuildStatus {
  reaper?: { built?: boolean; error?: string | null };
  compiler?: string | null;
}

/** Skip reason when the reaper is absent for a legitimate reason; throws when it should have been built. */
function missingReaper(): string | null {
  if (!existsSync('/proc/self/stat')) return 'the reaper reads /proc, which this system lacks';
  if (existsSync(REAPER)) return null;
  let status: BuildStatus;
  try {
    status = JSON.parse(readFileSync(`${binDir}status.json`, 'utf8')) as BuildStatus;
  } catch {
    throw new Error(`${REAPER} is missing and ${binDir}status.json too: run node scripts/build-native.mjs`);
  }
  if (status.compiler === null || status.compiler === undefined) return `reaper not built: ${status.reaper?.error ?? 'no compiler'}`;
  throw new Error(`${REAPER} was not built although a compiler was found: ${status.reaper?.error ?? 'unknown error'}`);
}

function mustIdentity(pid: number | undefined): ProcStat {
  assert.ok(pid !== undefined && pid > 0, 'the process has a pid');
  const id = readProcStat(pid);
  assert.ok(id !== undefined, `process ${pid} exists`);
  return id;
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.on('error', () => {
    /* surfaced by the wait on its exit, which never comes */
  });
  return child;
}

/** The reaper as a manager starts it: detached, its stdin a pipe from us. */
function startReaper(args: string[]): ChildProcessByStdio<Writable, null, null> {
  const child = spawn(REAPER, args, { detached: true, stdio: ['pipe', 'ignore', 'ignore'], env: { PATH, TEND_ID: `${PREFIX}reaper` } });
  track(child);
  // Writes after the reaper exited must not crash the test with EPIPE.
  child.stdin.on('error', () => undefined);
  return child;
}

/** A detached sh (its own session and group, like a pgroup leader) carrying the marker. */
function startTree(handle: string, script: string, marker: Record<string, string> = { TEND_ID: handle }): ChildProcess {
  return track(spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore', env: { PATH, ...marker } }));
}

function leaderLine(handle: string, pid: number | undefined): string {
  const id = mustIdentity(pid);
  return `P ${handle} ${id.pid} ${id.startTime} ${id.pgid}\n`;
}

/** The unmarked `sleep 1001` child of `parent`, once it runs. */
async function unmarkedChildOf(parent: number | undefined): Promise<number> {
  const find = (): number | undefined =>
    scanProcesses({ live: true }).find((p) => p.ppid === parent && p.argv.length === 2 && p.argv[0] === SLEEP && p.argv[1] === '1001')?.pid;
  const pid = await waitFor(find, { what: `the unmarked sleep under ${parent}` });
  const id = mustIdentity(pid);
  unmarked.set(pid, id.startTime);
  assert.ok(!readFileSync(`/proc/${pid}/environ`, 'latin1').includes('TEND_ID='), 'the unmarked member has no marker');
  return pid;
}

function sleepsOf(handle: string): number[] {
  return findMarked({ value: handle })
    .filter((p) => p.cmdline === 'sleep 1000')
    .map((p) => p.pid);
}

async function waitForSleeps(handle: string, n: number): Promise<number[]> {
  return waitFor(() => (sleepsOf(handle).length === n ? sleepsOf(handle) : undefined), {
    what: `${n} sleeps marked ${handle}`,
    detail: () => describeProcesses(findMarked({ value: handle })),
  });
}

async function reaperExit(reaper: ChildProcess): Promise<number | null> {
  const end = await waitForExit(reaper, { what: 'the reaper' });
  assert.equal(end.signal, null, 'the reaper must not die of a signal');
  return end.code;
}

interface Event {
  time: string;
  event: string;
  handle: string | null;
  pid: number | null;
  reason: string;
  source: string;
  manager: string | null;
}

/** Every line of the log, each parsed on its own: a line that is not one JSON object fails the test. */
function events(path: string): Event[] {
  const text = readFileSync(path, 'utf8');
  assert.ok(text.endsWith('\n'), 'the log ends with a newline');
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => {
      const e = JSON.parse(line) as Event;
      assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `time of ${line}`);
      assert.equal(e.source, 'reaper');
      assert.ok(e.pid === null || Number.isInteger(e.pid));
      return e;
    });
}

function cgroupSkipReason(): string | null {
  if (!isRoot) return 'needs root to create a cgroup';
  try {
    if (statfsSync(CGROUP2).type !== CGROUP2_SUPER_MAGIC) return `${CGROUP2} is not a cgroup2 mount`;
  } catch (err) {
    return `no ${CGROUP2}: ${(err as Error).message}`;
  }
  return null;
}

function ms(from: bigint): number {
  return Number(process.hrtime.bigint() - from) / 1e6;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

// ------------------------------------------------------------------ usage --

void test('reaper: --version prints the protocol version; bad usage exits 125', (t) => {
  const skip = missingReaper();
  if (skip !== null) return t.skip(skip);

  const v = spawnSync(REAPER, ['--version'], { encoding: 'utf8', env: { PATH } });
  assert.equal(v.status, 0);
  assert.equal(v.stdout, 'tend-reaper 1\n');

  const bad = [
    ['--bogus'],
    ['--log'],
    ['--log', ''],
    ['--log', `${tmp}/a`, '--log', `${tmp}/b`],
    ['--manager', '12'],
    ['--manager', '12:'],
    ['--manager', ':12'],
    ['--manager', '0:5'],
    ['--manager', '-1:5'],
    ['--manager', '12:x'],
    ['--version', '--log', `${tmp}/a`],
    ['extra'],
  ];
  for (const args of bad) {
    const r = spawnSync(REAPER, args, { encoding: 'utf8', env: { PATH }, input: '' });
    assert.equal(r.status, 125, `tend-reaper ${args.join(' ')} must be a usage error`);
    assert.match(r.stderr, /^tend-reaper: .+\nusage: tend-reaper /, `message for tend-reaper ${args.join(' ')}`);
  }
  const noLog = spawnSync(REAPER, ['--log', '/nonexistent/dir/life.jsonl'], { encoding: 'utf8', env: { PATH }, input: '' });
  assert.equal(noLog.status, 125);
  assert.match(noLog.stderr, /^tend-reaper: cannot open log \/nonexistent\/dir\/life\.jsonl \(errno 2\)/);
});

// ---------------------------------------------------------------- cgroup --

void test('reaper: end of input kills a cgroup tree, setsid escapee included, and removes the cgroup', async (t) => {
  const skip = missingReaper() ?? cgroupSkipReason();
  if (skip !== null) return t.skip(skip);

  const handle = newHandle();
  const parent = `${CGROUP2}/tend-reaper-test-${randomBytes(5).toString('hex')}`;
  mkdirSync(parent);
  cgroupParents.push(parent);
  const dir = `${parent}/${handle}`;
  mkdirSync(dir);
  const log = logFile();

  const reaper = startReaper(['--log', log]);
  reaper.stdin.write(`R ${handle} cgroup ${dir}\n`);
  const tree = startTree(handle, `echo 0 > ${dir}/cgroup.procs; exec sh -c "sleep 1000 & sleep 1000 & (setsid sleep 1000 &); ${UNMARKED} wait"`);
  reaper.stdin.write(leaderLine(handle, tree.pid));
  const sleeps = await waitForSleeps(handle, 3);
  const hidden = await unmarkedChildOf(tree.pid);
  const members = [tree.pid ?? -1, ...sleeps, hidden];
  assert.ok(
    sleeps.some((pid) => readProcStat(pid)?.sid !== readProcStat(tree.pid ?? -1)?.sid),
    'one sleep escaped into its own session (the case the cgroup must catch)',
  );

  const t0 = process.hrtime.bigint();
  reaper.stdin.end();
  await waitFor(() => members.every(isGone), { what: 'every member of the cgroup tree to be gone', detail: () => describeProcesses(findMarked({ value: handle })) });
  const latency = ms(t0);
  assert.equal(await reaperExit(reaper), 0);
  assert.deepEqual(findMarked({ value: handle }), [], 'no process carries the marker any more');
  assert.equal(existsSync(dir), false, 'the tree cgroup is removed');

  const lines = events(log);
  assert.ok(lines.some((e) => e.event === 'cgroup-kill' && e.handle === handle), 'a cgroup-kill line');
  assert.ok(lines.some((e) => e.event === 'cgroup-removed' && e.handle === handle), 'a cgroup-removed line');
  const exit = lines.at(-1);
  assert.ok(exit !== undefined);
  assert.equal(exit.event, 'reaper-exit', 'reaper-exit comes last');
  assert.equal(exit.handle, null);
  assert.match(exit.reason, /^manager gone \(end of input\): cleaned 1 trees/);
  console.log(`reaper: cgroup tree of ${members.length} processes gone ${latency.toFixed(1)} ms after end of input (polled)`);
});

// ---------------------------------------------------------------- pgroup --

void test('reaper: end of input kills a pgroup tree, setsid escapee included', async (t) => {
  const skip = missingReaper();
  if (skip !== null) return t.skip(skip);

  const handle = newHandle();
  const log = logFile();
  const reaper = startReaper(['--log', log]);
  reaper.stdin.write(`R ${handle} pgroup -\n`);
  const tree = startTree(handle, `sleep 1000 & (setsid sleep 1000 &); ${UNMARKED} wait`);
  reaper.stdin.write(leaderLine(handle, tree.pid));
  const sleeps = await waitForSleeps(handle, 2);
  const leader = mustIdentity(tree.pid);
  const escapee = sleeps.find((pid) => readProcStat(pid)?.pgid !== leader.pgid);
  assert.ok(escapee !== undefined, 'one sleep left the process group (only the marker can find it)');
  const hidden = await unmarkedChildOf(leader.pid);
  assert.equal(readProcStat(hidden)?.pgid, leader.pgid, 'the unmarked member is in the group (only the group kill can find it)');

  const members = [leader.pid, ...sleeps, hidden];
  const t0 = process.hrtime.bigint();
  reaper.stdin.end();
  await waitFor(() => members.every(isGone), { what: 'every member of the pgroup tree to be gone', detail: () => describeProcesses(findMarked({ value: handle })) });
  const latency = ms(t0);
  assert.equal(await reaperExit(reaper), 0);
  assert.deepEqual(findMarked({ value: handle }), []);

  const lines = events(log);
  const kills = lines.filter((e) => e.event === 'kill' && e.handle === handle);
  assert.ok(kills.some((e) => e.pid === escapee && e.reason === 'manager gone: marker'), `the escapee ${escapee} was killed by marker:\n${JSON.stringify(kills)}`);
  assert.ok(kills.some((e) => e.pid === leader.pgid && /process group/.test(e.reason)), 'the process group was killed');
  assert.equal(lines.at(-1)?.event, 'reaper-exit');
  console.log(`reaper: pgroup tree of ${members.length} processes gone ${latency.toFixed(1)} ms after end of input (polled)`);
});

void test('reaper: an unregistered tree (U) is left alone', async (t) => {
  const skip = missingReaper();
  if (skip !== null) return t.skip(skip);

  const handle = newHandle();
  const log = logFile();
  const reaper = startReaper(['--log', log]);
  reaper.stdin.write(`R ${handle} pgroup -\n`);
  const tree = startTree(handle, 'sleep 1000 & wait');
  reaper.stdin.write(leaderLine(handle, tree.pid));
  const sleeps = await waitForSleeps(handle, 1);
  reaper.stdin.end(`U ${handle}\n`);
  assert.equal(await reaperExit(reaper), 0);

  // The reaper has exited: whatever it was going to kill, it has.
  assert.ok(!isGone(tree.pid ?? -1), 'the leader survives');
  for (const pid of sleeps) assert.ok(!isGone(pid), `sleep ${pid} survives`);
  const lines = events(log);
  assert.deepEqual(
    lines.filter((e) => e.handle === handle),
    [],
    'nothing was done to the unregistered tree',
  );
  assert.match(lines.at(-1)?.reason ?? '', /cleaned 0 trees/);
  await cleanupByMarker({ value: handle }, { quiet: true });
});

void test('reaper: bystanders survive: another marker, a near-miss marker, and a marked process older than the leader', async (t) => {
  const skip = missingReaper();
  if (skip !== null) return t.skip(skip);

  const handle = newHandle();
  const log = logFile();
  // Started first: the right marker, but older than the leader registered below.
  const early = startTree(handle, 'exec sleep 1000');
  const earlyId = mustIdentity(early.pid);

  // The leader must start at least one clock tick after `early`, or the two
  // are indistinguishable by start time; retry until it does.
  const reaper = startReaper(['--log', log]);
  reaper.stdin.write(`R ${handle} pgroup -\n`);
  let leader: ChildProcess | undefined;
  await waitFor(
    async () => {
      if (leader) {
        const id = readProcStat(leader.pid ?? -1);
        if (id && id.startTime > earlyId.startTime) return true;
        leader.kill('SIGKILL');
        await waitForExit(leader, { what: 'a leader started in the same clock tick' });
      }
      leader = startTree(handle, 'exec sleep 1000');
      return false;
    },
    { what: 'a leader that starts later than the early process' },
  );
  assert.ok(leader !== undefined);
  reaper.stdin.write(leaderLine(handle, leader.pid));
  // Started after the leader, so only the marker match itself spares them.
  const other = startTree(handle, 'exec sleep 1000', { TEND_ID: `${handle}x` });
  const prefixOnly = startTree(handle, 'exec sleep 1000', { TEND_ID: handle.slice(0, -1) });
  const suffixOnly = startTree(handle, 'exec sleep 1000', { TEND_ID: `${PREFIX}other`, XTEND_ID: handle });
  const bystanders = [early.pid, other.pid, prefixOnly.pid, suffixOnly.pid].map((pid) => pid ?? -1);
  await waitFor(() => findMarked({ prefix: PREFIX }).filter((p) => p.cmdline === 'sleep 1000').length >= 5, {
    what: 'the leader and the bystanders to run sleep',
  });

  reaper.stdin.end();
  assert.equal(await reaperExit(reaper), 0);
  await waitFor(() => isGone(leader?.pid ?? -1), { what: 'the registered leader to be gone' });
  for (const pid of bystanders) {
    const id = readProcStat(pid);
    assert.ok(id !== undefined && id.state !== 'Z', `bystander ${pid} must survive (state ${id?.state ?? 'gone'})`);
  }
  assert.ok(readProcStat(early.pid ?? -1)?.startTime === earlyId.startTime, 'the early process is the same process, not a reused pid');
  const killed = events(log)
    .filter((e) => e.event === 'kill')
    .map((e) => e.pid);
  for (const pid of bystanders) assert.ok(!killed.includes(pid), `no kill logged for bystander ${pid}`);
  for (const child of [early, other, prefixOnly, suffixOnly]) child.kill('SIGKILL');
  await cleanupByMarker({ prefix: PREFIX }, { quiet: true });
});

void test('reaper: a process group whose registered leader identity does not match is not signalled', async (t) => {
  const skip = missingReaper();
  if (skip !== null) return t.skip(skip);

  const handle = newHandle();
  const log = logFile();
  // An unrelated group leader (its own session), without this handle's marker:
  // what a reused pgid looks like once the original group has died.
  const stranger = startTree(handle, 'exec sleep 1000', { TEND_ID: `${PREFIX}stranger` });
  const id = mustIdentity(stranger.pid);
  assert.equal(id.pgid, id.pid, 'the stranger leads its own group');

  const reaper = startReaper(['--log', log]);
  reaper.stdin.write(`R ${handle} pgroup -\nP ${handle} ${id.pid} ${id.startTime + 1000} ${id.pgid}\n`);
  reaper.stdin.end();
  assert.equal(await reaperExit(reaper), 0);

  const now = readProcStat(id.pid);
  assert.ok(now !== undefined && now.state !== 'Z' && now.startTime === id.startTime, 'the stranger and its group survive');
  assert.deepEqual(
    events(log).filter((e) => e.event === 'kill'),
    [],
    'nothing was killed',
  );
  stranger.kill('SIGKILL');
  await waitForExit(stranger, { what: 'the stranger' });
});

// --------------------------------------------------------- manager death --

void test('reaper: a SIGKILLed manager leaves nothing behind', async (t) => {
  const skip = missingReaper();
  if (skip !== null) return t.skip(skip);

  const handle = newHandle();
  const log = logFile();
  const host = track(spawn(process.execPath, [HOST, REAPER, handle, log], { stdio: ['pipe', 'pipe', 'inherit'], env: { PATH, TEND_ID: `${PREFIX}host` } }));
  const m = await waitForLineInStream(host.stdout as Readable, /^ready (\d+) (\d+)$/, { what: 'the host to be ready' });
  const reaperPid = Number(m[1]);
  const leaderPid = Number(m[2]);
  const sleeps = await waitForSleeps(handle, 2);
  const members = [leaderPid, ...sleeps];

  const t0 = process.hrtime.bigint();
  host.kill('SIGKILL');
  await waitFor(() => members.every(isGone), {
    what: 'the tree of a SIGKILLed manager to be gone',
    timeoutMs: 5_000,
    detail: () => describeProcesses(findMarked({ value: handle })),
  });
  const latency = ms(t0);
  await waitFor(() => isGone(reaperPid), { what: `the reaper ${reaperPid} to exit` });
  assert.deepEqual(findMarked({ value: handle }), []);
  const lines = events(log);
  assert.equal(lines.at(-1)?.event, 'reaper-exit');
  assert.match(lines.at(-1)?.reason ?? '', /^manager gone \(.+\): cleaned 1 trees/);
  assert.match(lines.at(-1)?.manager ?? '', new RegExp(`^${host.pid}:\\d+$`), 'the log names the manager');
  console.log(`reaper: tree of a SIGKILLed manager (${members.length} processes) gone ${latency.toFixed(1)} ms after the SIGKILL (polled)`);
});

void test('reaper: --manager is watched, so a leaked write end of the pipe cannot keep a tree alive', async (t) => {
  const skip = missingReaper();
  if (skip !== null) return t.skip(skip);

  const handle = newHandle();
  const log = logFile();
  const manager = startTree(handle, 'exec sleep 1000', { TEND_ID: `${PREFIX}manager` });
  const mid = mustIdentity(manager.pid);
  const reaper = startReaper(['--log', log, '--manager', `${mid.pid}:${mid.startTime}`]);
  reaper.stdin.write(`R ${handle} pgroup -\n`);
  const tree = startTree(handle, 'sleep 1000 & wait');
  reaper.stdin.write(leaderLine(handle, tree.pid));
  const members = [tree.pid ?? -1, ...(await waitForSleeps(handle, 1))];

  // The pipe stays open (as if another process held its write end); only
  // the manager's exit says it is gone.
  manager.kill('SIGKILL');
  await waitFor(() => members.every(isGone), { what: 'the tree to be gone after the manager died', timeoutMs: 5_000 });
  assert.equal(await reaperExit(reaper), 0);
  assert.match(events(log).at(-1)?.reason ?? '', /^manager gone \(manager process gone\): cleaned 1 trees/);
});

void test('reaper: Q cleans up at once, without waiting for end of input', async (t) => {
  const skip = missingReaper();
  if (skip !== null) return t.skip(skip);

  const handle = newHandle();
  const log = logFile();
  const reaper = startReaper(['--log', log]);
  reaper.stdin.write(`R ${handle} pidns -\n`);
  const tree = startTree(handle, 'sleep 1000 & wait');
  reaper.stdin.write(leaderLine(handle, tree.pid));
  const members = [tree.pid ?? -1, ...(await waitForSleeps(handle, 1))];
  reaper.stdin.write('Q\n');
  assert.equal(await reaperExit(reaper), 0);
  assert.ok(members.every(isGone), 'the tree is gone once the reaper has exited');
  const lines = events(log);
  assert.ok(lines.some((e) => e.event === 'kill' && e.reason.startsWith('manager shutdown: ')), 'kills say "manager shutdown"');
  assert.match(lines.at(-1)?.reason ?? '', /^manager shutdown: cleaned 1 trees/);
  reaper.stdin.end();
});

// -------------------------------------------------------------- protocol --

void test('reaper: garbage lines are logged as protocol errors and change nothing', async (t) => {
  const skip = missingReaper();
  if (skip !== null) return t.skip(skip);

  const handle = newHandle();
  const log = logFile();
  const reaper = startReaper(['--log', log]);
  const before = [
    'hello',
    'R',
    'R bad/handle pgroup -',
    `R ${'a'.repeat(65)} pgroup -`,
    `R ${handle} sometimes -`,
    `R ${handle} cgroup relative/dir`,
    `R ${handle} cgroup /sys/fs/cgroup/../../etc`,
    `R ${handle}  pgroup -`,
    `R ${handle} pgroup - extra`,
    ` R ${handle} pgroup -`,
    `P ${handle} 1 1 1`, // not registered yet
    'x'.repeat(5000),
    '',
    `U ${PREFIX}nosuch`,
    'Q now',
    `R ${handle} pgroup "-"\u0001\u00ff`,
  ];
  const afterR = [`P ${handle} 12x 1 1`, `P ${handle} 0 1 1`, `P ${handle} 1 -1 1`, `P ${handle} 1 1 1 1`, `U ${handle} extra`];
  reaper.stdin.write(Buffer.from(`${before.join('\n')}\n`, 'latin1'));
  reaper.stdin.write(`R ${handle} pgroup -\n`);
  reaper.stdin.write(`${afterR.join('\n')}\n`);
  const tree = startTree(handle, 'sleep 1000 & (setsid sleep 1000 &); wait');
  reaper.stdin.write(leaderLine(handle, tree.pid));
  const members = [tree.pid ?? -1, ...(await waitForSleeps(handle, 2))];
  reaper.stdin.end('R partial');

  assert.equal(await reaperExit(reaper), 0);
  assert.ok(members.every(isGone), 'the tree registered among the garbage is gone');
  const lines = events(log);
  const errors = lines.filter((e) => e.event === 'protocol-error');
  assert.equal(errors.length, before.length + afterR.length + 1, `one protocol-error per bad line:\n${errors.map((e) => e.reason).join('\n')}`);
  assert.ok(errors.some((e) => /longer than 4096/.test(e.reason)));
  assert.ok(errors.some((e) => /incomplete line at end of input: R partial/.test(e.reason)));
  assert.ok(errors.some((e) => e.reason.includes('"-"\u0001\ufffd')), 'control bytes and non-UTF-8 are escaped, not copied raw');
  assert.equal(lines.at(-1)?.event, 'reaper-exit');
});

// ----------------------------------------------------------- measurement --

void test('reaper: start time and memory (measured, not asserted)', async (t) => {
  const skip = missingReaper();
  if (skip !== null) return t.skip(skip);

  const version: number[] = [];
  const baseline: number[] = [];
  for (let i = 0; i < 30; i++) {
    let t0 = process.hrtime.bigint();
    const r = spawnSync(REAPER, ['--version'], { stdio: 'ignore', env: { PATH } });
    version.push(ms(t0));
    assert.equal(r.status, 0);
    t0 = process.hrtime.bigint();
    spawnSync('/bin/true', [], { stdio: 'ignore', env: { PATH } });
    baseline.push(ms(t0));
  }

  // spawn -> first registration processed: the reaper handles lines in order,
  // so the protocol-error it logs for the line after R (with its own clock,
  // to the millisecond) is written once R has been processed.
  const firstLine: number[] = [];
  for (let i = 0; i < 10; i++) {
    const log = logFile();
    const t0 = Date.now();
    const reaper = startReaper(['--log', log]);
    reaper.stdin.write(`R ${newHandle()} pgroup -\nmark\n`);
    const m = await waitForLineInFile(log, /"event":"protocol-error".*"reason":"unknown command: mark"/, { what: 'the mark line' });
    firstLine.push(Date.parse((JSON.parse(m.input ?? '{}') as Event).time) - t0);
    reaper.stdin.end();
    assert.equal(await reaperExit(reaper), 0);
  }

  // Idle with 1000 registrations (half with a cgroup path, all with a leader line).
  const log = logFile();
  const reaper = startReaper(['--log', log]);
  const lines: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const h = `${PREFIX}m${i}`;
    lines.push(i % 2 === 0 ? `R ${h} cgroup ${CGROUP2}/tend-reaper-test-none-${PREFIX}/${h}` : `R ${h} pgroup -`);
  }
  lines.push('mark');
  reaper.stdin.write(`${lines.join('\n')}\n`);
  await waitForLineInFile(log, /"reason":"unknown command: mark"/, { what: 'the 1000 registrations to be processed' });
  const status = readFileSync(`/proc/${reaper.pid}/status`, 'utf8');
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  const t0 = Date.now();
  reaper.stdin.end();
  assert.equal(await reaperExit(reaper), 0);
  const exitLine = events(log).at(-1);
  assert.match(exitLine?.reason ?? '', /cleaned 1000 trees/);
  const cleanupMs = Date.parse(exitLine?.time ?? '') - t0;

  const f = (xs: number[]): string => `median ${percentile(xs, 50).toFixed(2)} ms, p95 ${percentile(xs, 95).toFixed(2)} ms`;
  console.log(`reaper: spawn -> --version exit: ${f(version)} (spawn -> /bin/true exit: ${f(baseline)})`);
  console.log(`reaper: spawn -> first registration processed (log clock, 1 ms resolution): ${f(firstLine)}`);
  console.log(`reaper: idle with 1000 registrations: VmRSS ${kib('VmRSS')} KiB, VmHWM ${kib('VmHWM')} KiB`);
  console.log(`reaper: end of input -> reaper-exit logged with 1000 registered (nothing alive): ${cleanupMs} ms`);
});
