// sendSignal, the one function that sends every signal tend sends: with a fake
// process table and a fake kill it must never signal a recycled pid, a zombie,
// another boot's process or a group its voucher has left; ESRCH is "gone",
// EPERM is SIGNAL_DENIED. Then the real thing: a pid reused inside a fresh PID
// namespace.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { isTendError } from '../../src/core/errors.js';
import type { SignalName } from '../../src/core/signals.js';
import type { ProcessIdentity } from '../../src/platform/identity.js';
import type { ProcEntry, ProcessTable } from '../../src/platform/proc-table.js';
import { sendSignal, type KillFn, type SignalTarget } from '../../src/platform/signal.js';
import { killProcessesWithEnv } from '../helpers/proc-scan.js';
import { isRoot, repoRoot, run } from '../helpers/unit-local.js';
import { waitFor } from '../helpers/wait.js';

const MARK = `test-signal-${randomBytes(6).toString('hex')}`;
const BOOT = 'boot-1111';
const children = new Set<ChildProcess>();
const cgroupDirs: string[] = [];

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  killProcessesWithEnv('TEND_ID', MARK);
  for (const dir of cgroupDirs.reverse()) {
    await waitFor(() => {
      try {
        rmdirSync(dir);
        return true;
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === 'ENOENT';
      }
    }, { what: `removal of ${dir}` }).catch(() => undefined);
  }
});

// ------------------------------------------------------------------ fakes --

class FakeTable implements ProcessTable {
  readonly entries = new Map<number, ProcEntry>();
  constructor(public boot = BOOT) {}
  add(entry: Partial<ProcEntry> & { pid: number }): this {
    this.entries.set(entry.pid, { ppid: 1, pgid: entry.pid, sid: entry.pid, state: 'S', startTime: 1000, comm: 'fake', ...entry });
    return this;
  }
  read(pid: number): ProcEntry | undefined {
    return this.entries.get(pid);
  }
  list(): ProcEntry[] {
    return [...this.entries.values()];
  }
  marker(): string | undefined {
    return undefined;
  }
  bootId(): string {
    return this.boot;
  }
}

interface KillCall {
  pid: number;
  signal: SignalName | 0;
}

function fakeKill(errno?: string): { kill: KillFn; calls: KillCall[] } {
  const calls: KillCall[] = [];
  return {
    calls,
    kill: (pid, signal) => {
      calls.push({ pid, signal });
      if (errno) throw Object.assign(new Error(`kill ${errno}`), { code: errno, errno: -1, syscall: 'kill' });
    },
  };
}

const id = (pid: number, startTime = 1000, bootId = BOOT): ProcessIdentity => ({ pid, startTime, bootId });

function send(table: ProcessTable, target: SignalTarget, signal: SignalName = 'SIGTERM', errno?: string): { result: boolean; calls: KillCall[] } {
  const { kill, calls } = fakeKill(errno);
  return { result: sendSignal(table, target, signal, kill), calls };
}

// ------------------------------------------------------- with fake tables --

test('a matching identity is signalled: kill(pid) for a process, kill(-pgid) for a group', () => {
  const table = new FakeTable().add({ pid: 300, startTime: 5000 }).add({ pid: 301, pgid: 300, startTime: 5001 });
  assert.deepEqual(send(table, { kind: 'process', identity: id(300, 5000) }, 'SIGTERM'), { result: true, calls: [{ pid: 300, signal: 'SIGTERM' }] });
  assert.deepEqual(send(table, { kind: 'process', identity: id(301, 5001) }, 'SIGHUP'), { result: true, calls: [{ pid: 301, signal: 'SIGHUP' }] });
  assert.deepEqual(send(table, { kind: 'group', pgid: 300, member: id(301, 5001) }, 'SIGKILL'), {
    result: true,
    calls: [{ pid: -300, signal: 'SIGKILL' }],
  });
});

test('a recycled pid (same pid, other start time) is never signalled', () => {
  const table = new FakeTable().add({ pid: 300, startTime: 7777 });
  for (const stale of [id(300, 5000), id(300, 7776), id(300, 7778)]) {
    assert.deepEqual(send(table, { kind: 'process', identity: stale }, 'SIGKILL'), { result: false, calls: [] });
    assert.deepEqual(send(table, { kind: 'group', pgid: 300, member: stale }, 'SIGKILL'), { result: false, calls: [] });
  }
});

test('an identity from another boot is never signalled', () => {
  const table = new FakeTable('boot-2222').add({ pid: 300, startTime: 5000 });
  assert.deepEqual(send(table, { kind: 'process', identity: id(300, 5000, BOOT) }), { result: false, calls: [] });
  assert.deepEqual(send(table, { kind: 'group', pgid: 300, member: id(300, 5000, BOOT) }), { result: false, calls: [] });
  assert.equal(send(table, { kind: 'process', identity: id(300, 5000, 'boot-2222') }).result, true);
});

test('a zombie or a process that is gone is not signalled', () => {
  const table = new FakeTable().add({ pid: 300, state: 'Z' }).add({ pid: 301, state: 'X' }).add({ pid: 302, pgid: 302, state: 'Z' });
  assert.deepEqual(send(table, { kind: 'process', identity: id(300) }), { result: false, calls: [] });
  assert.deepEqual(send(table, { kind: 'process', identity: id(301) }), { result: false, calls: [] });
  assert.deepEqual(send(table, { kind: 'group', pgid: 302, member: id(302) }), { result: false, calls: [] });
  assert.deepEqual(send(table, { kind: 'process', identity: id(999) }), { result: false, calls: [] });
  assert.deepEqual(send(table, { kind: 'group', pgid: 999, member: id(999) }), { result: false, calls: [] });
});

test('a group whose vouching member has left it is not signalled', () => {
  // 301 was in group 300, then called setsid(): it no longer vouches for group 300.
  const table = new FakeTable().add({ pid: 301, pgid: 301, sid: 301, startTime: 5001 });
  assert.deepEqual(send(table, { kind: 'group', pgid: 300, member: id(301, 5001) }, 'SIGKILL'), { result: false, calls: [] });
  // The same member still vouches for its own process.
  assert.equal(send(table, { kind: 'process', identity: id(301, 5001) }).result, true);
});

test('ESRCH means already gone: false, no error', () => {
  const table = new FakeTable().add({ pid: 300 });
  const { result, calls } = send(table, { kind: 'process', identity: id(300) }, 'SIGTERM', 'ESRCH');
  assert.equal(result, false);
  assert.equal(calls.length, 1);
  assert.equal(send(table, { kind: 'group', pgid: 300, member: id(300) }, 'SIGTERM', 'ESRCH').result, false);
});

test('EPERM throws SIGNAL_DENIED naming the signal and pid, with the cause', () => {
  const table = new FakeTable().add({ pid: 300 });
  assert.throws(
    () => send(table, { kind: 'process', identity: id(300) }, 'SIGTERM', 'EPERM'),
    (error: unknown) => {
      assert.ok(isTendError(error, 'SIGNAL_DENIED'), String(error));
      assert.match(error.message, /SIGTERM/);
      assert.match(error.message, /\b300\b/);
      assert.equal((error.cause as NodeJS.ErrnoException).code, 'EPERM');
      return true;
    },
  );
  assert.throws(() => send(table, { kind: 'group', pgid: 300, member: id(300) }, 'SIGKILL', 'EPERM'), (e: unknown) => isTendError(e, 'SIGNAL_DENIED'));
});

test('other kill errors are not swallowed', () => {
  const table = new FakeTable().add({ pid: 300 });
  assert.throws(() => send(table, { kind: 'process', identity: id(300) }, 'SIGTERM', 'EINVAL'), (e: unknown) => (e as NodeJS.ErrnoException).code === 'EINVAL');
});

test('never kill(0) or kill(-1): a group id of 0 or 1 is refused even when a member vouches for it', () => {
  // Kernel threads and a container's pid 1 really show pgid 0 in /proc, and init leads group 1:
  // kill(-0) would signal tend's own process group, kill(-1) every process it may signal.
  const table = new FakeTable().add({ pid: 2, pgid: 0, sid: 0 }).add({ pid: 1, pgid: 1, sid: 1 });
  for (const [pgid, member] of [
    [0, 2],
    [1, 1],
  ] as const) {
    const { result, calls } = send(table, { kind: 'group', pgid, member: id(member) }, 'SIGKILL');
    assert.deepEqual(
      calls.filter((c) => c.pid === 0 || c.pid === -1),
      [],
      `group ${pgid} vouched for by pid ${member} became kill(${calls[0]?.pid}, ${calls[0]?.signal})`,
    );
    assert.equal(result, false);
  }
});

// -------------------------------------------------------- cgroup members --

test('cgroup targets: each listed member is signalled, pids 0 and 1 never, a vanished one is "gone"', () => {
  const table = new FakeTable();
  assert.deepEqual(send(table, { kind: 'cgroup', dir: '/sys/fs/cgroup/x', pids: [4100, 4101] }, 'SIGTERM'), {
    result: true,
    calls: [
      { pid: 4100, signal: 'SIGTERM' },
      { pid: 4101, signal: 'SIGTERM' },
    ],
  });
  assert.deepEqual(send(table, { kind: 'cgroup', dir: '/sys/fs/cgroup/x', pids: [0, 1] }, 'SIGKILL'), { result: false, calls: [] });
  assert.deepEqual(send(table, { kind: 'cgroup', dir: '/sys/fs/cgroup/x', pids: [] }, 'SIGTERM'), { result: false, calls: [] });
});

// ------------------------------------------------------ real pid reuse --

interface PidReuseResult {
  attempts: number;
  a: { pid: number; startTime: number; pgid: number };
  b: { pid: number; startTime: number; pgid: number };
  liveIdentityAccepted: boolean;
  staleProcess: boolean;
  staleGroup: boolean;
  bStateAfter: string | null;
  bStartAfter: number | null;
  controlSent: boolean;
  bExitSignal: string | null;
}

function findUnshare(): string | undefined {
  return ['/usr/bin/unshare', '/bin/unshare', '/usr/sbin/unshare'].find((p) => existsSync(p));
}

test('a pid reused by an unrelated process is never signalled (real pid reuse in a PID namespace)', async (t) => {
  if (!isRoot) return t.skip('needs root: writing /proc/sys/kernel/ns_last_pid requires CAP_SYS_ADMIN (and CAP_CHECKPOINT_RESTORE)');
  const unshare = findUnshare();
  if (!unshare) return t.skip('unshare (util-linux) is not installed');
  const env = { TEND_ID: MARK, PATH: '/usr/local/bin:/usr/bin:/bin' };
  const probe = spawnSync(unshare, ['--pid', '--fork', '--mount-proc', '--kill-child', '/bin/sh', '-c', 'echo 1 > /proc/sys/kernel/ns_last_pid'], {
    env,
    timeout: 10_000,
    encoding: 'utf8',
  });
  if (probe.status !== 0) return t.skip(`cannot create a PID namespace and set ns_last_pid here: ${probe.stderr.trim() || probe.error?.message || `exit ${probe.status}`}`);

  const fixture = join(repoRoot, 'test/fixtures/pid-reuse.mjs');
  const { code, stdout, stderr } = await run(unshare, ['--pid', '--fork', '--mount-proc', '--kill-child', process.execPath, fixture], { env }, 30_000);
  assert.equal(code, 0, `fixture failed: ${stderr}`);
  const result = JSON.parse(stdout.trim()) as PidReuseResult;
  const detail = JSON.stringify(result);
  // The set-up really reused the pid: a bare kill(pid) or kill(-pgid) would have hit B.
  assert.equal(result.liveIdentityAccepted, true, `the recorded identity was refused while A lived: ${detail}`);
  assert.equal(result.b.pid, result.a.pid, detail);
  assert.equal(result.b.pgid, result.a.pgid, detail);
  assert.notEqual(result.b.startTime, result.a.startTime, detail);
  // tend refused both stale targets, and B lived on.
  assert.equal(result.staleProcess, false, `sendSignal signalled the recycled pid: ${detail}`);
  assert.equal(result.staleGroup, false, `sendSignal signalled the recycled process group: ${detail}`);
  assert.ok(result.bStateAfter !== null && !['Z', 'X'].includes(result.bStateAfter), `B did not survive: ${detail}`);
  assert.equal(result.bStartAfter, result.b.startTime, detail);
  // B died of the control's SIGTERM, so no SIGKILL reached it before.
  assert.equal(result.controlSent, true, detail);
  assert.equal(result.bExitSignal, 'SIGTERM', `B died of ${result.bExitSignal}: ${detail}`);
});
