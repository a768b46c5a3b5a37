// Races and failure paths around start and stop: a shutdown while a start is
// under way, a spawn that fails after validation, a SIGKILL that must cut a
// graceful stop short, options that must be refused before anything changes,
// signals that tend-nsinit does not forward, and state it must not trust.
import assert from 'node:assert/strict';
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isTendError } from '../../src/core/errors.js';
import { ProcessManager, recoverStateDir, type ProcessHandle } from '../../src/index.js';
import { locateCgroup2 } from '../../src/platform/cgroup.js';
import { systemProcessTable } from '../../src/platform/proc-table.js';
import { cleanupByMarker, RUN_VARIABLE } from '../helpers/cleanup.js';
import { findMarked, isStillAlive, procIdentity } from '../helpers/proc-scan.js';
import { deadIdentity, fabricateRecord, lifecycleLines, makeStateDir, recordPath, removeStateDirs, SLEEP, startStranger } from '../helpers/state.js';
import { waitFor, withDeadline } from '../helpers/wait.js';

const RUN = `races-${process.pid}`;
const env = { [RUN_VARIABLE]: RUN };
const cgroupDirs: string[] = [];

after(async () => {
  await cleanupByMarker({ variable: RUN_VARIABLE, value: RUN }, { quiet: true });
  for (const dir of cgroupDirs) {
    try {
      rmdirSync(dir);
    } catch {
      /* already gone */
    }
  }
  removeStateDirs();
});

async function manager(options: Parameters<typeof ProcessManager.create>[0] = {}): Promise<ProcessManager> {
  return ProcessManager.create({ handleSignals: false, stateDir: makeStateDir('races'), ...options });
}

for (const strategy of ['cgroup', 'pgroup', 'pidns'] as const) {
  test(`${strategy}: shutdown() while start() is under way leaves nothing running and no tree unowned`, async () => {
    const m = await manager();
    const starting = m.start({ command: '/bin/sh', args: ['-c', `${SLEEP} 30 & ${SLEEP} 30`], env, strategy });
    // The start is in flight (registered, not yet spawned) when the shutdown begins.
    while (m.list().length === 0) await Promise.resolve();
    const shutdown = m.shutdown();
    let handle: ProcessHandle | undefined;
    try {
      handle = await starting;
    } catch (error) {
      assert.ok(isTendError(error, 'MANAGER_CLOSED'), `a start cut short by shutdown fails with MANAGER_CLOSED, got ${String(error)}`);
    }
    await shutdown;
    if (handle) assert.notEqual(handle.status().state, 'running', 'a tree that did start was stopped by the shutdown');
    assert.deepEqual(
      findMarked({ variable: RUN_VARIABLE, value: RUN }).filter((p) => p.cmdline.includes(' 30')),
      [],
      'no process of the tree survives',
    );
  });
}

test('a spawn that fails after validation rejects with START_FAILED and does not crash the host later', async () => {
  const m = await manager();
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  try {
    const cwd = makeStateDir('vanishing-cwd');
    // The environment is read after the cwd was checked: removing the cwd then makes the spawn itself fail.
    const inherited = new Proxy({ A: '1' }, {
      ownKeys(target) {
        rmdirSync(cwd);
        return Reflect.ownKeys(target);
      },
    });
    const m2 = await manager({ env: inherited });
    await assert.rejects(m2.start({ command: SLEEP, args: ['1'], cwd, inheritEnv: true, strategy: 'pgroup' }), (error: unknown) => {
      assert.ok(isTendError(error, 'START_FAILED'));
      assert.match(error.message, /working directory .* disappeared/);
      return true;
    });
    await m2.shutdown();
    // Give a stray rejection every chance to surface: two turns of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(unhandled, []);
  } finally {
    process.removeListener('unhandledRejection', onUnhandled);
    await m.shutdown();
  }
});

test('a SIGKILL stop cuts short a graceful stop that is waiting out its grace period', async () => {
  const m = await manager();
  const h = await m.start({ command: '/bin/sh', args: ['-c', `trap '' TERM; ${SLEEP} 1000`], env, strategy: 'cgroup', stopTimeoutMs: 60_000 });
  await waitFor(() => findMarked({ value: h.id }).some((p) => p.comm === 'sleep') || undefined, { what: 'the tree to run' });
  const graceful = h.stop();
  const forced = h.stop({ signal: 'SIGKILL' });
  // Without the escalation both would wait the full minute.
  const [a, b] = await withDeadline(Promise.all([graceful, forced]), { what: 'the escalated stop', timeoutMs: 10_000 });
  assert.equal(a.status.state, 'terminated');
  assert.equal(b.status.state, 'terminated');
  assert.deepEqual(findMarked({ value: h.id }), []);
  await m.shutdown();
});

test('stop options are checked before anything changes: a bad shutdown() leaves the manager open and its trees managed', async () => {
  const m = await manager();
  const h = await m.start({ command: SLEEP, args: ['1000'], env, strategy: 'pgroup' });
  await assert.rejects(m.shutdown({ timeoutMs: -1 }), (error: unknown) => isTendError(error, 'SPEC_TIMEOUT_INVALID'));
  await assert.rejects(m.stopAll({ signal: 'SIGNOPE' as NodeJS.Signals }), (error: unknown) => isTendError(error, 'SPEC_SIGNAL_UNKNOWN'));
  assert.equal(m.closed, false);
  assert.equal(h.status().state, 'running');
  const again = await m.start({ command: SLEEP, args: ['1000'], env, strategy: 'pgroup' });
  await m.shutdown();
  assert.equal(h.status().state, 'terminated');
  assert.equal(again.status().state, 'terminated');
});

test('pidns: a stop signal tend-nsinit does not forward still reaches the tree, gracefully', async (t) => {
  const m = await manager();
  if (!m.capabilities().strategies.pidns.available) {
    await m.shutdown();
    return t.skip(`pidns unavailable: ${m.capabilities().strategies.pidns.reason}`);
  }
  const h = await m.start({ command: '/bin/sh', args: ['-c', `trap 'exit 7' ALRM; ${SLEEP} 1000 & wait`], env, strategy: 'pidns', stopSignal: 'SIGALRM', stopTimeoutMs: 10_000 });
  await waitFor(() => findMarked({ value: h.id }).some((p) => p.comm === 'sleep') || undefined, { what: 'the tree to run' });
  const result = await h.stop();
  // The shell's trap ran: it exited 7 by itself, not killed as a wrapper would be.
  assert.deepEqual(result.status.state === 'exited' ? result.status.exitCode : result.status, 7);
  assert.deepEqual(findMarked({ value: h.id }), []);
  await m.shutdown();
});

test("recovery leaves alone a cgroup that a record names but tend could not have made (not the handle's, outside the parent)", async (t) => {
  const location = locateCgroup2();
  if (!location || process.geteuid?.() !== 0) return t.skip('needs root and a cgroup v2 mount');
  const foreign = join(location.mount, `tend-races-foreign-${process.pid}`);
  mkdirSync(foreign);
  cgroupDirs.push(foreign);
  const stranger = await startStranger(RUN);
  writeFileSync(join(foreign, 'cgroup.procs'), String(stranger.pid));
  const stateDir = makeStateDir('foreign-cgroup');
  mkdirSync(join(stateDir, 'records'), { mode: 0o700 });
  const record = fabricateRecord({ handle: 'foreigncg0001', manager: await deadIdentity(), strategy: 'cgroup', cgroup: foreign });
  writeFileSync(recordPath(stateDir, record.handle), JSON.stringify(record));
  const report = await recoverStateDir({ stateDir, table: systemProcessTable() });
  assert.deepEqual(report.trees.map((tree) => [tree.handle, tree.pids, tree.cgroupRemoved]), [['foreigncg0001', [], false]]);
  assert.ok(procIdentity(stranger.pid), 'the process in the foreign cgroup is alive');
});

test('a state directory whose records/ is a file is refused with STATE_DIR_UNSAFE', async () => {
  const stateDir = makeStateDir('records-file');
  writeFileSync(join(stateDir, 'records'), 'not a directory');
  await assert.rejects(ProcessManager.create({ stateDir, handleSignals: false }), (error: unknown) => {
    assert.ok(isTendError(error, 'STATE_DIR_UNSAFE'));
    assert.match(error.message, /records is not a directory/);
    return true;
  });
});

test('a reaper that cannot run is restarted a few times, then given up on with a warning', async (t) => {
  const stateDir = makeStateDir('reaper-gives-up');
  // The reaper cannot open its log when the log is a directory.
  mkdirSync(join(stateDir, 'lifecycle.jsonl'));
  const warnings: string[] = [];
  const m = await ProcessManager.create({ stateDir, handleSignals: false });
  if (m.reaperPid === undefined) {
    await m.shutdown();
    return t.skip('tend-reaper is not built');
  }
  m.on('warning', (w) => warnings.push(w.message));
  await waitFor(() => warnings.some((w) => /giving up/.test(w)) || undefined, { what: 'the manager to give up on the reaper', detail: () => warnings.join('\n') });
  assert.ok(warnings.length <= 7, `restarted ${warnings.length} times before giving up`);
  assert.equal(m.reaperPid, undefined, 'no reaper is left running in a restart loop');
  await m.shutdown();
});

test('pgroup: a member that cleared its environment but stayed in the group is still part of the tree after the leader exits', async () => {
  const m = await manager();
  const h = await m.start({
    command: '/bin/sh',
    // env -i drops TEND_ID: only the process group ties this sleep to the tree.
    args: ['-c', `/usr/bin/env -i ${RUN_VARIABLE}=${RUN} ${SLEEP} 1000 & exit 3`],
    env,
    strategy: 'pgroup',
  });
  const orphan = await waitFor(() => findMarked({ variable: RUN_VARIABLE, value: RUN }).find((p) => p.comm === 'sleep' && p.pgid === h.pid), {
    what: 'the sleep without marker',
  });
  await waitFor(() => (h.status().state === 'running-detached' ? true : undefined), { what: 'running-detached', detail: () => JSON.stringify(h.status()) });
  const status = h.status();
  assert.ok(status.state === 'running-detached' && status.childPids.includes(orphan.pid), `the unmarked sleep is a member: ${JSON.stringify(status)}`);
  const result = await h.stop();
  assert.equal(result.status.state, 'exited');
  assert.equal(isStillAlive(orphan.pid, orphan.startTime), false, 'the unmarked sleep was stopped with its tree');
  await m.shutdown();
});

test('manager options of the wrong type are refused with SPEC_OPTION_INVALID naming the option', async () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ cwd: 5 }, 'cwd'],
    [{ cgroupParent: '' }, 'cgroupParent'],
    [{ stateDir: true }, 'stateDir'],
    [{ reaper: 'yes' }, 'reaper'],
    [{ env: 'PATH=/bin' }, 'env'],
    [{ plugins: {} }, 'plugins'],
  ];
  for (const [options, field] of cases) {
    await assert.rejects(ProcessManager.create(options), (error: unknown) => {
      assert.ok(isTendError(error, 'SPEC_OPTION_INVALID'), `${JSON.stringify(options)}: ${String(error)}`);
      assert.match(error.message, new RegExp(`\`${field}\``));
      return true;
    });
  }
});

test('the lifecycle log records the stop signal, and the SIGKILL when the grace period ran out', async () => {
  const stateDir = makeStateDir('stop-log');
  const m = await ProcessManager.create({ handleSignals: false, stateDir });
  const h = await m.start({ command: '/bin/sh', args: ['-c', `trap '' TERM; ${SLEEP} 1000`], env, strategy: 'pgroup', stopTimeoutMs: 200 });
  await waitFor(() => findMarked({ value: h.id }).some((p) => p.comm === 'sleep') || undefined, { what: 'the tree to run' });
  assert.equal((await h.stop()).forced, true);
  await m.shutdown();
  const events = lifecycleLines(stateDir)
    .filter((l) => l.handle === h.id)
    .map((l) => l.event);
  assert.deepEqual(
    events.filter((e) => e === 'signal' || e === 'kill'),
    ['signal', 'kill'],
  );
});
