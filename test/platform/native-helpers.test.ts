// Tests of the native helpers (native/bin/tend-shim, native/bin/tend-nsinit)
// driven as tend drives them: spawned from Node, checked through /proc and
// cgroupfs. Every process started here carries TEND_ID so that a leak is
// visible to the suite's leak check, and is killed in `after` if a test left it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { findMarked, isGone, readProcStat, type MarkedProcess } from '../helpers/proc-scan.js';
import { waitFor, waitForExit, waitForLineInStream } from '../helpers/wait.js';

const binDir = fileURLToPath(new URL('../../../native/bin/', import.meta.url));
const SHIM = `${binDir}tend-shim`;
const NSINIT = `${binDir}tend-nsinit`;
const TEND_ID = `test-native-${randomBytes(6).toString('hex')}`;
const ENV: Record<string, string> = { TEND_ID, PATH: '/usr/local/bin:/usr/bin:/bin' };
const SH = '/bin/sh';
const SLEEP = ['/usr/bin/sleep', '/bin/sleep'].find((p) => existsSync(p)) ?? '/bin/sleep';
const DEADLINE_MS = 10_000;
const isRoot = process.getuid?.() === 0;

const started = new Set<ChildProcess>();
const cgroupsMade: string[] = [];

// ---------------------------------------------------------------- helpers --

interface BuildStatus {
  shim?: { built?: boolean; error?: string | null };
  nsinit?: { built?: boolean; error?: string | null };
  compiler?: string | null;
}

function readStatus(): BuildStatus | null {
  try {
    return JSON.parse(readFileSync(`${binDir}status.json`, 'utf8')) as BuildStatus;
  } catch {
    return null;
  }
}

/** Skip reason when a helper is absent for a legitimate reason; throws when it should have been built. */
function missingHelper(path: string, which: 'shim' | 'nsinit'): string | null {
  if (existsSync(path)) return null;
  const status = readStatus();
  if (status === null) throw new Error(`${path} is missing and ${binDir}status.json too: run node scripts/build-native.mjs`);
  if (status.compiler === null || status.compiler === undefined) {
    return `${which} not built: ${status[which]?.error ?? 'no compiler'}`;
  }
  throw new Error(`${path} was not built although a compiler was found: ${status[which]?.error ?? 'unknown error'}`);
}

function start(file: string, args: string[], env: Record<string, string> = ENV, stdio: StdioOptions = ['ignore', 'pipe', 'pipe']): ChildProcess {
  const child = spawn(file, args, { env, stdio });
  started.add(child);
  child.on('error', () => {
    /* surfaced by the awaiting helper through 'close'/'exit' never arriving */
  });
  return child;
}

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
}

async function run(file: string, args: string[], env: Record<string, string> = ENV): Promise<Finished> {
  const child = start(file, args, env);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const [code, signal] = (await once(child, 'close', { signal: AbortSignal.timeout(DEADLINE_MS) })) as [
    number | null,
    NodeJS.Signals | null,
  ];
  return { code, signal, stdout, stderr, pid: child.pid ?? -1 };
}

/** Live processes carrying this file's marker. */
function marked(): MarkedProcess[] {
  return findMarked({ value: TEND_ID });
}

function sleepsRunning(): MarkedProcess[] {
  return marked().filter((p) => p.cmdline === 'sleep 1000');
}

function killQuietly(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (pid === undefined || pid <= 0) return;
  try {
    process.kill(pid, signal);
  } catch {
    /* ESRCH: already gone */
  }
}

/** End a test's processes, so a failed test cannot spill members into the next one's counts. */
function killAll(child: ChildProcess): void {
  killQuietly(child.pid);
  for (const p of marked()) killQuietly(p.pid);
}

function cgroup2Root(): string | null {
  let mountinfo: string;
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return null;
  }
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (right?.split(' ')[0] === 'cgroup2') return left?.split(' ')[4] ?? null;
  }
  return null;
}

/** A fresh, empty cgroup, or the reason none can be had here. */
function makeCgroup(): { path: string } | { skip: string } {
  if (!isRoot) return { skip: 'needs root to create a cgroup' };
  const root = cgroup2Root();
  if (root === null) return { skip: 'no cgroup2 mount' };
  const path = `${root}/tend-test-${randomBytes(6).toString('hex')}`;
  try {
    mkdirSync(path);
  } catch (err) {
    return { skip: `cgroup2 at ${root} not writable: ${(err as Error).message}` };
  }
  cgroupsMade.push(path);
  return { path };
}

function cgroupPids(path: string): number[] {
  return readFileSync(`${path}/cgroup.procs`, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map(Number)
    .sort((a, b) => a - b);
}

function populated(path: string): boolean {
  return /^populated 1$/m.test(readFileSync(`${path}/cgroup.events`, 'utf8'));
}

/** cgroup.kill where the kernel has it (5.14+), else each member by pid. */
function killCgroup(path: string): void {
  if (existsSync(`${path}/cgroup.kill`)) writeFileSync(`${path}/cgroup.kill`, '1');
  else for (const pid of cgroupPids(path)) killQuietly(pid);
}

async function destroyCgroup(path: string): Promise<void> {
  if (!existsSync(path)) return;
  killCgroup(path);
  await waitFor(() => !populated(path), { what: `${path} is empty` });
  rmdirSync(path);
}

function sortedNums(xs: Iterable<number>): number[] {
  return [...xs].sort((a, b) => a - b);
}

after(async () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) killQuietly(child.pid);
  for (const p of marked()) killQuietly(p.pid);
  for (const path of cgroupsMade) {
    try {
      await destroyCgroup(path);
    } catch {
      /* best effort: the assertion that failed already says why */
    }
  }
});

// ------------------------------------------------------------------- shim --

void test('shim passes the exact environment and keeps the pid', async (t) => {
  const skip = missingHelper(SHIM, 'shim');
  if (skip !== null) return t.skip(skip);

  const env = { A: '1', TEND_ID };
  const r = await run(SHIM, ['--', '/usr/bin/env', 'env'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\n').filter((l) => l !== ''), ['A=1', `TEND_ID=${TEND_ID}`]);

  const p = await run(SHIM, ['--', SH, 'sh', '-c', 'echo $$']);
  assert.equal(p.code, 0, p.stderr);
  assert.equal(p.stdout.trim(), String(p.pid), 'the command must run in the shim process itself');

  const a = await run(SHIM, ['--', SH, 'custom-argv0', '-c', 'tr "\\0" "\\n" < /proc/$$/cmdline', 'zero', 'x y', '']);
  assert.equal(a.stdout, 'custom-argv0\n-c\ntr "\\0" "\\n" < /proc/$$/cmdline\nzero\nx y\n\n', 'ARGV0 and arguments pass through verbatim');
});

void test('shim -c joins a fresh cgroup before exec, so forks are members', async (t) => {
  const skip = missingHelper(SHIM, 'shim');
  if (skip !== null) return t.skip(skip);
  const cg = makeCgroup();
  if ('skip' in cg) return t.skip(cg.skip);

  const child = start(SHIM, ['-c', `${cg.path}/cgroup.procs`, '--', SH, 'sh', '-c', 'sleep 1000 & echo "ready $!"; wait']);
  try {
    const m = await waitForLineInStream(child.stdout as Readable, /^ready (\d+)$/, { what: '"ready"' });
    const sleepPid = Number(m[1]);
    assert.deepEqual(cgroupPids(cg.path), sortedNums([child.pid ?? -1, sleepPid]));
    assert.ok(populated(cg.path));

    killCgroup(cg.path);
    await waitFor(() => !populated(cg.path), { what: 'cgroup.events says populated 0' });
    const end = await waitForExit(child, { what: 'the child' });
    assert.equal(end.signal, 'SIGKILL');
    assert.ok(isGone(sleepPid));
  } finally {
    killAll(child);
    await destroyCgroup(cg.path);
  }
});

void test('shim refuses a dead parent, bad usage and an unrunnable file', async (t) => {
  const skip = missingHelper(SHIM, 'shim');
  if (skip !== null) return t.skip(skip);

  const wrong = await run(SHIM, ['-s', '9', '-p', String(process.pid + 1), '--', SH, 'sh', '-c', 'echo ran']);
  assert.equal(wrong.code, 125);
  assert.equal(wrong.stderr, 'tend-shim: parent PID exited before start\n');
  assert.equal(wrong.stdout, '', 'the command must not run');

  const right = await run(SHIM, ['-s', '9', '-p', String(process.pid), '--', SH, 'sh', '-c', 'echo ran']);
  assert.equal(right.code, 0, right.stderr);
  assert.equal(right.stdout, 'ran\n');

  const badUsages: string[][] = [
    [],
    ['--'],
    ['--', SH],
    [SH, 'sh'],
    ['-s', '9', '--', SH, 'sh'],
    ['-p', '1', '--', SH, 'sh'],
    ['-s', 'x9', '-p', '1', '--', SH, 'sh'],
    ['-s', '65', '-p', '1', '--', SH, 'sh'],
    ['-s', '9', '-p', '99999999999999999999', '--', SH, 'sh'],
    ['-s', '9', '-p', '-1', '--', SH, 'sh'],
    ['-c'],
    ['-c', '', '--', SH, 'sh'],
    ['-c', 'a', '-c', 'b', '--', SH, 'sh'],
    ['-x', '--', SH, 'sh'],
    ['--', 'sh', 'sh'],
  ];
  for (const args of badUsages) {
    const r = await run(SHIM, [...args]);
    assert.equal(r.code, 125, `tend-shim ${args.join(' ')} must be a usage error`);
    assert.match(r.stderr, /^tend-shim: .+\nusage: tend-shim /, `message for tend-shim ${args.join(' ')}`);
  }

  const missing = await run(SHIM, ['--', '/nonexistent/tend-x', 'x']);
  assert.equal(missing.code, 127);
  assert.equal(missing.stderr, 'tend-shim: cannot execute /nonexistent/tend-x (errno 2)\n');

  const notExec = await run(SHIM, ['--', '/etc/passwd', 'x']);
  assert.equal(notExec.code, 126);
  assert.equal(notExec.stderr, 'tend-shim: cannot execute /etc/passwd (errno 13)\n');

  const noCgroup = await run(SHIM, ['-c', '/nonexistent/cgroup.procs', '--', SH, 'sh', '-c', 'echo ran']);
  assert.equal(noCgroup.code, 125);
  assert.equal(noCgroup.stderr, 'tend-shim: cannot join cgroup /nonexistent/cgroup.procs (errno 2)\n');
  assert.equal(noCgroup.stdout, '');
});

void test('shim parent-death signal kills the command when its parent dies', async (t) => {
  const skip = missingHelper(SHIM, 'shim');
  if (skip !== null) return t.skip(skip);

  // The intermediate sh is the shim's parent; `$!` is the shim's pid, which
  // becomes the sleep's pid at exec.
  const parent = start(SH, ['-c', `"$0" -s 9 -p $$ -- ${SLEEP} sleep 1000 & echo $!; wait`, SHIM]);
  try {
    const m = await waitForLineInStream(parent.stdout as Readable, /^(\d+)$/, { what: 'the sleep pid' });
    const pid = Number(m[1]);
    await waitFor(() => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith('sleep\0');
      } catch {
        return false;
      }
    }, { what: 'the shim has exec()ed sleep' });
    assert.equal(readProcStat(pid)?.ppid, parent.pid);

    parent.kill('SIGKILL');
    await waitForExit(parent, { what: 'the parent' });
    await waitFor(() => isGone(pid), { what: `sleep ${pid} is gone after its parent was SIGKILLed` });
  } finally {
    killAll(parent);
  }
});

// ----------------------------------------------------------------- nsinit --

const NS_OPTS = isRoot ? [] : ['-u'];
let nsProbe: Promise<string | null> | undefined;

/** Skip reason when PID namespaces can't be had here (not root and no unprivileged user namespaces). */
function nsUnavailable(): Promise<string | null> {
  nsProbe ??= (async () => {
    const skip = missingHelper(NSINIT, 'nsinit');
    if (skip !== null) return skip;
    const r = await run(NSINIT, [...NS_OPTS, '--', SH, 'sh', '-c', 'exit 0']);
    if (r.code === 125 && /unshare/.test(r.stderr)) return `no PID namespace here: ${r.stderr.trim()}`;
    return null;
  })();
  return nsProbe;
}

void test('nsinit runs the command as pid 2 and passes its exit code through', async (t) => {
  const skip = await nsUnavailable();
  if (skip !== null) return t.skip(skip);

  const pid = await run(NSINIT, [...NS_OPTS, '--', SH, 'sh', '-c', 'echo $$']);
  assert.equal(pid.code, 0, pid.stderr);
  assert.equal(pid.stdout, '2\n');

  const seven = await run(NSINIT, [...NS_OPTS, '--', SH, 'sh', '-c', 'exit 7']);
  assert.equal(seven.code, 7);
  assert.equal(seven.signal, null);

  const env = await run(NSINIT, [...NS_OPTS, '--', '/usr/bin/env', 'env'], { B: '2', TEND_ID });
  assert.deepEqual(env.stdout.split('\n').filter((l) => l !== ''), ['B=2', `TEND_ID=${TEND_ID}`]);

  const killed = await run(NSINIT, [...NS_OPTS, '--', SH, 'sh', '-c', 'kill -USR1 $$']);
  assert.equal(killed.signal, 'SIGUSR1', 'a leader killed by a signal makes OUTER die by it too');
});

void test('nsinit refuses bad usage, a dead parent and an unrunnable file', async (t) => {
  const skip = await nsUnavailable();
  if (skip !== null) return t.skip(skip);

  for (const args of [[], ['--', SH], ['-u', '-u', '--', SH, 'sh'], ['-s', '9', '--', SH, 'sh'], ['--', 'sh', 'sh']]) {
    const r = await run(NSINIT, args);
    assert.equal(r.code, 125, `tend-nsinit ${args.join(' ')} must be a usage error`);
    assert.match(r.stderr, /^tend-nsinit: .+\nusage: tend-nsinit /);
  }
  const wrong = await run(NSINIT, ['-s', '9', '-p', String(process.pid + 1), ...NS_OPTS, '--', SH, 'sh', '-c', 'echo ran']);
  assert.equal(wrong.code, 125);
  assert.equal(wrong.stderr, 'tend-nsinit: parent PID exited before start\n');
  assert.equal(wrong.stdout, '');

  const right = await run(NSINIT, ['-s', '9', '-p', String(process.pid), ...NS_OPTS, '--', SH, 'sh', '-c', 'echo ran']);
  assert.equal(right.code, 0, right.stderr);
  assert.equal(right.stdout, 'ran\n');

  const missing = await run(NSINIT, [...NS_OPTS, '--', '/nonexistent/tend-x', 'x']);
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /^tend-nsinit: cannot execute \/nonexistent\/tend-x \(errno 2\)/);
});

void test('nsinit forwards SIGTERM to the whole tree', async (t) => {
  const skip = await nsUnavailable();
  if (skip !== null) return t.skip(skip);

  const outer = start(NSINIT, [...NS_OPTS, '--', SH, 'sh', '-c', 'sleep 1000 & sleep 1000 & echo ready; wait']);
  try {
    await waitForLineInStream(outer.stdout as Readable, /^ready$/, { what: '"ready"' });
    // "ready" can come before the background forks have exec()ed sleep.
    await waitFor(() => sleepsRunning().length === 2, { what: 'both sleeps run' });
    const sleeps = sleepsRunning();

    outer.kill('SIGTERM');
    const end = await waitForExit(outer, { what: 'OUTER' });
    assert.deepEqual(end, { code: null, signal: 'SIGTERM' }, 'OUTER reports the leader sh, killed by SIGTERM');
    for (const s of sleeps) assert.ok(isGone(s.pid), `sleep ${s.pid} must be gone once OUTER has exited`);
    await waitFor(() => marked().length === 0, { what: 'no marked process is left' });
  } finally {
    killAll(outer);
  }
});

void test('nsinit reports the leader on fd 3 while members still run, then ends with its status', async (t) => {
  const skip = await nsUnavailable();
  if (skip !== null) return t.skip(skip);

  const outer = start(NSINIT, [...NS_OPTS, '--', SH, 'sh', '-c', '(sleep 1000 &) ; exit 3'], ENV, ['ignore', 'pipe', 'pipe', 'pipe']);
  try {
    await waitForLineInStream(outer.stdio[3] as Readable, /^exit 3$/, { what: '"exit 3" on fd 3' });
    assert.equal(outer.exitCode, null, 'OUTER stays while the detached sleep runs');
    assert.equal(outer.signalCode, null);

    await waitFor(() => sleepsRunning().length === 1, { what: 'the detached sleep runs' });
    const sleepPid = sleepsRunning()[0]?.pid ?? -1;
    assert.ok(!isGone(sleepPid));

    // The notification pipe must reach OUTER and C1 only, never the command's tree.
    const notifyPipe = readlinkSync(`/proc/${outer.pid}/fd/3`);
    for (const p of marked()) {
      if (p.pid === outer.pid || readProcStat(p.pid)?.ppid === outer.pid) continue;
      let fds: string[] = [];
      try {
        fds = readdirSync(`/proc/${p.pid}/fd`);
      } catch {
        continue; /* exited meanwhile */
      }
      for (const fd of fds) {
        let target = '';
        try {
          target = readlinkSync(`/proc/${p.pid}/fd/${fd}`);
        } catch {
          continue;
        }
        assert.notEqual(target, notifyPipe, `pid ${p.pid} (${p.cmdline}) inherited the fd-3 pipe as fd ${fd}`);
      }
    }

    outer.kill('SIGTERM');
    const end = await waitForExit(outer, { what: 'OUTER' });
    assert.deepEqual(end, { code: 3, signal: null }, 'OUTER ends with the leader status, not the signal');
    assert.ok(isGone(sleepPid));
  } finally {
    killAll(outer);
  }
});

void test('nsinit: SIGKILL of OUTER kills the whole namespace', async (t) => {
  const skip = await nsUnavailable();
  if (skip !== null) return t.skip(skip);

  const outer = start(NSINIT, [...NS_OPTS, '--', SH, 'sh', '-c', 'trap "" TERM; sleep 1000 & (trap "" TERM; sleep 1000) & echo ready; wait']);
  try {
    await waitForLineInStream(outer.stdout as Readable, /^ready$/, { what: '"ready"' });
    await waitFor(() => sleepsRunning().length === 2, { what: 'both sleeps run' });
    const members = marked();

    outer.kill('SIGKILL');
    assert.deepEqual(await waitForExit(outer, { what: 'OUTER' }), { code: null, signal: 'SIGKILL' });
    await waitFor(() => members.every((p) => isGone(p.pid)), { what: `all of ${members.map((p) => p.pid).join(', ')} to be gone` });
  } finally {
    killAll(outer);
  }
});

void test('nsinit -c puts OUTER and every namespace member in the cgroup', async (t) => {
  const skip = await nsUnavailable();
  if (skip !== null) return t.skip(skip);
  const cg = makeCgroup();
  if ('skip' in cg) return t.skip(cg.skip);

  const outer = start(NSINIT, ['-c', `${cg.path}/cgroup.procs`, ...NS_OPTS, '--', SH, 'sh', '-c', 'sleep 1000 & echo ready; wait']);
  try {
    await waitForLineInStream(outer.stdout as Readable, /^ready$/, { what: '"ready"' });
    await waitFor(() => sleepsRunning().length === 1, { what: 'the sleep runs' });
    const members = marked().map((p) => p.pid);
    assert.equal(members.length, 4, 'OUTER, C1, sh and sleep');
    assert.deepEqual(cgroupPids(cg.path), sortedNums(members));
  } finally {
    killAll(outer);
    await destroyCgroup(cg.path);
  }
});

void test('nsinit -u maps the caller uid for an unprivileged user', async (t) => {
  const skip = missingHelper(NSINIT, 'nsinit');
  if (skip !== null) return t.skip(skip);
  if (!isRoot) return t.skip('needs root to switch to an unprivileged uid');
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
  if (setpriv === undefined) return t.skip('setpriv (util-linux) not installed');

  const r = await run(setpriv, ['--reuid=65534', '--regid=65534', '--clear-groups', NSINIT, '-u', '--', SH, 'sh', '-c', 'echo $$ $(id -u) $(id -g)']);
  if (r.code === 125 && /unshare/.test(r.stderr)) return t.skip(`no unprivileged user namespaces: ${r.stderr.trim()}`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '2 65534 65534\n');

  const plain = await run(setpriv, ['--reuid=65534', '--regid=65534', '--clear-groups', NSINIT, '--', SH, 'sh', '-c', 'echo ran']);
  assert.equal(plain.code, 125);
  assert.match(plain.stderr, /unshare\(CLONE_NEWPID\).*strategy pgroup/);
  assert.equal(plain.stdout, '');
});
