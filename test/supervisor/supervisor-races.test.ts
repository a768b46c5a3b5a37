// The supervisor in-process, against real process trees. Kill-all, and races
// between kill-all, delete, restart, stop and start. Every wait is for an event
// or a condition with a deadline; after each test nothing the services started
// may be alive.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServiceStore } from '../../src/supervisor/service-store.js';
import { SH } from '../helpers/fixtures.js';
import { describeProcesses, findMarked, procIdentity } from '../helpers/proc-scan.js';
import { SLEEP, makeStateDir } from '../helpers/state.js';
import { waitFor, withDeadline } from '../helpers/wait.js';
import { checkNothingSurvives, DEADLINE_MS, svc, byTag, withSupervisor, waitForState, pending, rejectsWith, awaitTree, assertGone, statesOf, triggerPath, slowStop, settled } from './harness.js';

checkNothingSurvives();

describe('Supervisor', () => {
  test('kill-all: every pid that was alive is reported, all services stopped, queued starts refused', async () => {
    await withSupervisor('kill-all', { maxConcurrent: 2 }, async ({ supervisor, events }) => {
      const a = svc('a');
      const b = svc('b', { command: SH, args: ['-c', `${SLEEP} 1000 & ${SLEEP} 1000`] });
      const c = svc('c');
      const d = svc('d');
      for (const s of [a, b, c, d]) supervisor.define(s);
      await supervisor.start('a');
      await supervisor.start('b');
      await awaitTree(b, 'sleep', 2);
      const queued = pending(supervisor.start('c'));
      await waitFor(() => supervisor.limitStatus().queued === 1, { what: 'c queued', timeoutMs: DEADLINE_MS });
      const alive = [...byTag(a), ...byTag(b)];
      const expected = alive.map((p) => p.pid).sort((x, y) => x - y);
      const report = await withDeadline(supervisor.killAll(), { what: 'killAll', timeoutMs: DEADLINE_MS });
      assert.deepEqual(report.killed_pids, expected);
      assert.equal(report.killed_count, expected.length);
      assert.deepEqual(report.services, ['a', 'b']);
      assert.equal(report.dequeued, 1);
      await rejectsWith(queued, 'LIMIT_REACHED', 'the queued start of c');
      for (const name of ['a', 'b', 'c', 'd']) assert.equal(supervisor.info(name).state, 'stopped', name);
      assert.ok(!statesOf(events, 'd').includes('stopping'), 'd never ran');
      assertGone(alive, 'the trees after kill-all');
      assert.deepEqual(byTag(c), []);
      assert.equal(supervisor.limitStatus().active_processes, 0);
    });
  });

  describe('races between commands', () => {
    // The start comes while kill-all is killing: in the same turn (always before the killed tree's exit is
    // seen), or one event-loop turn later (which, depending on timing, may come after kill-all is done).
    const startAfterKillAll: readonly { readonly when: string; readonly defer: (start: () => void) => void }[] = [
      { when: 'in the same turn', defer: (start) => start() },
      { when: 'one event-loop turn later', defer: (start) => setImmediate(start) },
    ];
    for (const { when, defer } of startAfterKillAll) {
      test(`kill-all racing a start ${when}: the start runs one tree, once the kill is done; the limiter counts only live pids`, async () => {
        await withSupervisor('race-kill-all', {}, async ({ supervisor }) => {
          const web = svc('web', { restart: 'on-failure', restartLimit: { maxRestarts: 5, backoffMs: 10, maxBackoffMs: 10 } });
          supervisor.define(web);
          const first = await withDeadline(supervisor.start('web'), { what: 'start web', timeoutMs: DEADLINE_MS });
          const killing = pending(supervisor.killAll());
          const starting = pending(new Promise<unknown>((resolve, reject) => defer(() => void supervisor.start('web').then(resolve, reject))));
          const killed = await settled(killing, 'killAll');
          assert.ok('value' in killed, `killAll rejected: ${'error' in killed ? String(killed.error) : ''}`);
          const started = await settled(starting, 'the start after killAll');

          const info = supervisor.info('web');
          const alive = byTag(web);
          assert.ok(info.state === 'running' || info.state === 'stopped', `web is ${info.state} (${info.reason ?? ''}) once both settled; alive:\n${describeProcesses(alive)}`);
          if (info.state === 'running') {
            assert.ok(info.pid !== null && info.handle !== null);
            assert.notEqual(info.handle, first.service.handle, 'a new tree runs after kill-all');
            assert.deepEqual(
              findMarked({ value: info.handle }).map((p) => p.pid),
              [info.pid],
            );
            assert.deepEqual(
              alive.map((p) => p.pid),
              [info.pid],
              `only the tree web reports may be alive:\n${describeProcesses(alive)}`,
            );
          } else {
            assert.deepEqual(alive, [], `web is stopped, yet:\n${describeProcesses(alive)}`);
          }
          const { active_pids } = supervisor.limitStatus();
          const dead = active_pids.filter((pid) => {
            const id = procIdentity(pid);
            return id === undefined || id.state === 'Z' || id.state === 'X';
          });
          assert.deepEqual(dead, [], `the limiter counts pids that are gone (active_pids ${JSON.stringify(active_pids)})`);
          assert.deepEqual(active_pids, info.state === 'running' ? [info.pid] : []);
          // The start came after kill-all had interrupted the service: it waits for the kill, then runs; nothing cancels it.
          assert.ok('value' in started, `the start issued after killAll was refused: ${'error' in started ? String(started.error) : ''}`);
          assert.equal(info.state, 'running');
        });
      });
    }

    test('delete racing a start: the start is SERVICE_UNKNOWN, nothing runs, the store forgets it', async () => {
      const storeDir = join(makeStateDir('sup-race-delete'), 'services');
      const store = new ServiceStore(storeDir, () => undefined);
      await withSupervisor('race-delete', { store }, async (ctx) => {
        const { supervisor } = ctx;
        const trigger = triggerPath(ctx, 'delete');
        const slow = slowStop('slow', trigger);
        supervisor.define(slow);
        await withDeadline(supervisor.start('slow'), { what: 'start slow', timeoutMs: DEADLINE_MS });
        const seen = byTag(slow);
        const deleting = pending(supervisor.delete('slow'));
        await waitForState(supervisor, 'slow', 'stopping');
        const starting = pending(supervisor.start('slow'));
        writeFileSync(trigger, '');
        await withDeadline(deleting, { what: 'delete slow', timeoutMs: DEADLINE_MS });
        await rejectsWith(starting, 'SERVICE_UNKNOWN', 'the start that raced the delete');
        assert.equal(supervisor.has('slow'), false);
        assertGone(seen, 'slow after delete');
        assert.deepEqual(byTag(slow), [], `nothing of slow may run after delete:\n${describeProcesses(byTag(slow))}`);
        assert.equal(existsSync(join(storeDir, 'slow.json')), false, 'the store still has slow.json');
        assert.deepEqual(
          store.load().map((s) => s.definition.name),
          [],
        );
      });
    });

    test('restart racing stop: the stop wins, nothing runs, the service is not wanted', async () => {
      const storeDir = join(makeStateDir('sup-race-restart'), 'services');
      const store = new ServiceStore(storeDir, () => undefined);
      await withSupervisor('race-restart', { store }, async (ctx) => {
        const { supervisor } = ctx;
        const trigger = triggerPath(ctx, 'restart');
        const slow = slowStop('slow', trigger);
        supervisor.define(slow);
        await withDeadline(supervisor.start('slow'), { what: 'start slow', timeoutMs: DEADLINE_MS });
        const seen = byTag(slow);
        const restarting = pending(supervisor.restart('slow'));
        await waitForState(supervisor, 'slow', 'stopping');
        const stopping = pending(supervisor.stop(['slow']));
        writeFileSync(trigger, '');
        await settled(restarting, 'restart slow');
        const stopped = await settled(stopping, 'stop slow');
        assert.ok('value' in stopped, `stop rejected: ${'error' in stopped ? String(stopped.error) : ''}`);
        const info = supervisor.info('slow');
        assert.equal(info.state, 'stopped', `slow is ${info.state} (${info.reason ?? ''})`);
        assert.equal(info.pid, null);
        assertGone(seen, 'the first run of slow');
        assert.deepEqual(byTag(slow), [], `nothing of slow may run after the stop:\n${describeProcesses(byTag(slow))}`);
        assert.deepEqual(
          store.load().map((s) => [s.definition.name, s.wanted]),
          [['slow', false]],
        );
      });
    });
  });
});
