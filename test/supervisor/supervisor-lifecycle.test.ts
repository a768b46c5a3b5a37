// The supervisor in-process, against real process trees. Starting and stopping
// whole trees, define, unknown names, logs and PID files, and the store
// (restore after a daemon restart). Every wait is for an event or a condition
// with a deadline; after each test nothing the services started may be alive.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isTendError } from '../../src/core/errors.js';
import { ServiceStore, type StoredOutcome } from '../../src/supervisor/service-store.js';
import { SH } from '../helpers/fixtures.js';
import { describeProcesses, findMarked, survivorsOf } from '../helpers/proc-scan.js';
import { SLEEP, makeStateDir } from '../helpers/state.js';
import { waitForLineInFile, withDeadline } from '../helpers/wait.js';
import { checkNothingSurvives, DEADLINE_MS, svc, byTag, withSupervisor, waitForService, waitForState, rejectsWith, awaitTree, assertGone, statesOf } from './harness.js';

checkNothingSurvives();

describe('Supervisor', () => {
  test('start: running, with pid, pids and handle in info(); a second start is alreadyRunning', async () => {
    await withSupervisor('start', {}, async ({ supervisor, events }) => {
      const web = svc('web');
      supervisor.define(web);
      assert.equal(supervisor.info('web').state, 'stopped');
      const report = await withDeadline(supervisor.start('web'), { what: 'start web', timeoutMs: DEADLINE_MS });
      assert.equal(report.already_running, false);
      assert.deepEqual(report.freed, []);
      assert.equal(report.service.state, 'running');
      const info = supervisor.info('web');
      assert.equal(info.state, 'running');
      assert.equal(typeof info.pid, 'number');
      assert.ok(info.pids.includes(info.pid as number), `pids ${JSON.stringify(info.pids)} should include pid ${info.pid}`);
      assert.equal(typeof info.handle, 'string');
      assert.equal(info.strategy, 'pgroup');
      assert.equal(info.ready, null);
      assert.equal(info.restarts, 0);
      const marked = findMarked({ value: info.handle as string });
      const sleep = marked.find((p) => p.pid === info.pid);
      assert.ok(sleep, `pid ${info.pid} should carry TEND_ID=${info.handle}:\n${describeProcesses(marked)}`);
      assert.equal(sleep.comm, 'sleep');
      assert.deepEqual(statesOf(events, 'web'), ['stopped', 'queued', 'starting', 'running']);

      const again = await supervisor.start('web');
      assert.equal(again.already_running, true);
      assert.equal(supervisor.info('web').pid, info.pid);
    });
  });

  test('stop: the whole tree (sh -c "sleep & sleep") is gone, the service stopped', async () => {
    await withSupervisor('stop', {}, async ({ supervisor }) => {
      const tree = svc('tree', { command: SH, args: ['-c', `${SLEEP} 1000 & ${SLEEP} 1000`] });
      supervisor.define(tree);
      await supervisor.start('tree');
      const seen = await awaitTree(tree, 'sleep', 2);
      const handle = supervisor.info('tree').handle as string;
      assert.ok(seen.every((p) => findMarked({ value: handle }).some((q) => q.pid === p.pid)));
      const [info] = await withDeadline(supervisor.stop(['tree']), { what: 'stop tree', timeoutMs: DEADLINE_MS });
      assert.equal(info?.state, 'stopped');
      assert.equal(info?.pid, null);
      assert.deepEqual(info?.pids, []);
      assert.equal(info?.handle, null);
      assertGone(seen, 'the tree after stop');
      assert.deepEqual(survivorsOf(handle, seen), []);
    });
  });

  test('logs and PID files: output in <logDir>/NAME.log, PID file while running, removed after', async () => {
    const base = makeStateDir('sup-logs-dirs');
    const logDir = join(base, 'logs');
    const runDir = join(base, 'run');
    await withSupervisor('logs', { logDir, runDir }, async ({ supervisor }) => {
      supervisor.define(svc('talker', { command: SH, args: ['-c', `echo hello-out; echo hello-err >&2; exec ${SLEEP} 1000`] }));
      const logPath = join(logDir, 'talker.log');
      assert.equal(supervisor.logPath('talker'), logPath);
      const { service } = await supervisor.start('talker');
      assert.equal(service.log, logPath);
      await waitForLineInFile(logPath, /^hello-out$/, { what: 'stdout in the log', timeoutMs: DEADLINE_MS });
      await waitForLineInFile(logPath, /^hello-err$/, { what: 'stderr in the log', timeoutMs: DEADLINE_MS });
      const pidFile = join(runDir, 'talker.pid');
      assert.equal(readFileSync(pidFile, 'utf8'), `${service.pid}\n`);
      await supervisor.stop(['talker']);
      assert.equal(existsSync(pidFile), false, 'the PID file is removed after stop');
      assert.ok(existsSync(logPath), 'the log stays');
    });
  });

  test('define: another definition while running is SERVICE_RUNNING; the same one is fine; once stopped it is replaced', async () => {
    await withSupervisor('define', {}, async ({ supervisor }) => {
      const web = svc('web');
      supervisor.define(web);
      await supervisor.start('web');
      const other = { ...web, args: ['2000'] };
      assert.throws(
        () => supervisor.define(other),
        (error: unknown) => isTendError(error, 'SERVICE_RUNNING') && error.details.name === 'web',
      );
      assert.deepEqual(supervisor.definition('web').args, ['1000']);
      assert.doesNotThrow(() => supervisor.define({ ...web }));
      await supervisor.stop(['web']);
      supervisor.define(other);
      assert.deepEqual(supervisor.definition('web').args, ['2000']);
      const { service } = await supervisor.start('web');
      const sleep = findMarked({ value: service.handle as string }).find((p) => p.pid === service.pid);
      assert.match(sleep?.cmdline ?? '', /sleep 2000$/);
    });
  });

  test('define: SERVICE_RUNNING names what differs, down to the env variable', async () => {
    await withSupervisor('define-env', {}, async ({ supervisor }) => {
      const web = svc('web');
      supervisor.define({ ...web, env: { ...web.env, MODE: 'one' } });
      await supervisor.start('web');
      let thrown: unknown;
      try {
        supervisor.define({ ...web, env: { ...web.env, MODE: 'two' } });
      } catch (error) {
        thrown = error;
      }
      assert.ok(isTendError(thrown, 'SERVICE_RUNNING'), `expected SERVICE_RUNNING, got ${String(thrown)}`);
      assert.equal(thrown.details.differences, 'env MODE');
      assert.match(thrown.message, /env MODE/);
      assert.equal(supervisor.definition('web').env.MODE, 'one');
    });
  });

  test('define: a dependency cycle is refused with SPEC_OPTION_INVALID naming it', async () => {
    await withSupervisor('define-cycle', {}, async ({ supervisor }) => {
      supervisor.define(svc('a', { dependsOn: ['b'] }));
      assert.throws(
        () => supervisor.define(svc('b', { dependsOn: ['a'] })),
        (error: unknown) => isTendError(error, 'SPEC_OPTION_INVALID') && /cycle/.test(error.message) && /b -> a -> b/.test(error.message),
      );
      assert.equal(supervisor.has('b'), false);
      assert.deepEqual(supervisor.definition('a').dependsOn, ['b']);
      // Without the cycle, b is accepted and a starts after it.
      supervisor.define(svc('b'));
      await withDeadline(supervisor.start('a'), { what: 'start a', timeoutMs: DEADLINE_MS });
      assert.equal(supervisor.info('b').state, 'running');
    });
  });

  test('unknown names are SERVICE_UNKNOWN with a suggestion', async () => {
    await withSupervisor('unknown', {}, async ({ supervisor }) => {
      supervisor.define(svc('web'));
      await rejectsWith(Promise.resolve().then(() => supervisor.start('wbe')), 'SERVICE_UNKNOWN', 'start wbe');
      assert.throws(() => supervisor.info('wbe'), (error: unknown) => isTendError(error, 'SERVICE_UNKNOWN') && error.details.suggestion === 'web');
    });
  });

  describe('store', () => {
    test('restoreWanted starts only the wanted services', async () => {
      const storeDir = join(makeStateDir('sup-store'), 'services');
      const store = new ServiceStore(storeDir, () => undefined);
      const wanted = svc('wanted');
      const idle = svc('idle');
      store.save({ definition: wanted, wanted: true });
      store.save({ definition: idle, wanted: false });
      await withSupervisor('restore', { store }, async ({ supervisor, events }) => {
        for (const stored of store.load()) supervisor.define(stored.definition, stored.wanted);
        supervisor.restoreWanted();
        const info = await waitForState(supervisor, 'wanted', 'running');
        assert.equal(typeof info.pid, 'number');
        assert.equal(supervisor.info('idle').state, 'stopped');
        assert.deepEqual(statesOf(events, 'idle'), ['stopped']);
        assert.deepEqual(byTag(idle), []);
        assert.deepEqual(
          store.load().map((s) => [s.definition.name, s.wanted]),
          [
            ['idle', false],
            ['wanted', true],
          ],
        );
      });
    });

    test('close({ forget: false }) stops everything but leaves the services wanted in the store', async () => {
      const storeDir = join(makeStateDir('sup-store-close'), 'services');
      const store = new ServiceStore(storeDir, () => undefined);
      await withSupervisor('close-keep', { store }, async ({ supervisor }) => {
        const web = svc('web', { command: SH, args: ['-c', `${SLEEP} 1000 & ${SLEEP} 1000`] });
        supervisor.define(web);
        supervisor.define(svc('off'));
        await supervisor.start('web');
        const seen = await awaitTree(web, 'sleep', 2);
        assert.deepEqual(
          store.load().map((s) => [s.definition.name, s.wanted]),
          [
            ['off', false],
            ['web', true],
          ],
        );
        await withDeadline(supervisor.close({ forget: false }), { what: 'close without forgetting', timeoutMs: DEADLINE_MS });
        assertGone(seen, 'web after close');
        assert.equal(supervisor.info('web').state, 'stopped');
        assert.deepEqual(
          store.load().map((s) => [s.definition.name, s.wanted]),
          [
            ['off', false],
            ['web', true],
          ],
        );
        await rejectsWith(supervisor.start('web'), 'MANAGER_CLOSED', 'start after close');
      });
    });

    test('restoreWanted: a dependent that sorts before its dependency, both stored as exited, both end running', async () => {
      const storeDir = join(makeStateDir('sup-store-order'), 'services');
      const store = new ServiceStore(storeDir, () => undefined);
      await withSupervisor('restore-order', { store }, async ({ supervisor, warnings }) => {
        const outcome: StoredOutcome = { state: 'exited', reason: 'exit code 0 (exited cleanly)', restarts: 0, lastExit: { code: 0, signal: null, at: new Date().toISOString() } };
        // In the order the store loads them, by name: the dependent first.
        supervisor.define(svc('api', { dependsOn: ['zdb'] }), true, outcome);
        supervisor.define(svc('zdb'), true, outcome);
        supervisor.restoreWanted();
        await waitForState(supervisor, 'zdb', 'running');
        const api = await waitForService(supervisor, 'api', (i) => i.state === 'running' || i.state === 'failed' || i.state === 'exited' || i.state === 'stopped', 'running, or ended');
        assert.equal(api.state, 'running', `api is ${api.state}: ${api.reason ?? ''}; warnings: ${warnings.join(' | ')}`);
        assert.equal(supervisor.info('zdb').state, 'running');
      });
    });

    test('close({ forget: true }) leaves them unwanted; delete() removes the file', async () => {
      const storeDir = join(makeStateDir('sup-store-forget'), 'services');
      const store = new ServiceStore(storeDir, () => undefined);
      await withSupervisor('close-forget', { store }, async ({ supervisor }) => {
        supervisor.define(svc('web'));
        supervisor.define(svc('gone'));
        await supervisor.start('web');
        await supervisor.start('gone');
        await supervisor.delete('gone');
        assert.equal(supervisor.has('gone'), false);
        await supervisor.close({ forget: true });
        assert.deepEqual(
          store.load().map((s) => [s.definition.name, s.wanted]),
          [['web', false]],
        );
      });
    });
  });
});
