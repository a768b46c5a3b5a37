// The supervisor in-process, against real process trees. The concurrency limit:
// queued starts, refusals, exempt services. Every wait is for an event or a
// condition with a deadline; after each test nothing the services started may
// be alive.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor, withDeadline } from '../helpers/wait.js';
import { checkNothingSurvives, DEADLINE_MS, svc, byTag, withSupervisor, pending, rejectsWith, indexOf } from './harness.js';

checkNothingSurvives();

describe('Supervisor', () => {
  describe('concurrency limit', () => {
    test('with maxConcurrent 1, a second start is queued until the first stops', async () => {
      await withSupervisor('limit-queue', { maxConcurrent: 1 }, async ({ supervisor, events }) => {
        supervisor.define(svc('a'));
        const b = svc('b');
        supervisor.define(b);
        await supervisor.start('a');
        const startingB = pending(supervisor.start('b'));
        await waitFor(() => supervisor.limitStatus().queued === 1, { what: 'b in the limiter queue', timeoutMs: DEADLINE_MS, detail: () => JSON.stringify(supervisor.limitStatus()) });
        const status = supervisor.limitStatus();
        assert.equal(status.active_processes, 1);
        assert.equal(status.can_start_new, false);
        assert.deepEqual(status.active_pids, [supervisor.info('a').pid]);
        assert.equal(supervisor.info('b').state, 'queued');
        assert.deepEqual(byTag(b), []);
        await supervisor.stop(['a']);
        const report = await withDeadline(startingB, { what: 'start b', timeoutMs: DEADLINE_MS });
        assert.equal(report.service.state, 'running');
        assert.ok(indexOf(events, 'b', 'starting') > indexOf(events, 'a', 'stopped'));
        assert.equal(supervisor.limitStatus().active_processes, 1);
      });
    });

    test('queue: false is refused with LIMIT_REACHED, state stopped; exempt services do not count', async () => {
      await withSupervisor('limit-refuse', { maxConcurrent: 1 }, async ({ supervisor }) => {
        supervisor.define(svc('a'));
        const c = svc('c');
        supervisor.define(c);
        supervisor.define(svc('free', { exemptFromLimit: true }));
        await supervisor.start('a');
        await rejectsWith(supervisor.start('c', { queue: false }), 'LIMIT_REACHED', 'start c without queue');
        assert.equal(supervisor.info('c').state, 'stopped');
        assert.match(supervisor.info('c').reason ?? '', /concurrency limit of 1/);
        assert.deepEqual(byTag(c), []);
        const report = await withDeadline(supervisor.start('free', { queue: false }), { what: 'start the exempt service', timeoutMs: DEADLINE_MS });
        assert.equal(report.service.state, 'running');
        const status = supervisor.limitStatus();
        assert.equal(status.active_processes, 1);
        assert.deepEqual(status.active_pids, [supervisor.info('a').pid]);
      });
    });

    test('setLimit: raising the limit admits the queued start', async () => {
      await withSupervisor('limit-set', { maxConcurrent: 1 }, async ({ supervisor }) => {
        supervisor.define(svc('a'));
        supervisor.define(svc('b'));
        await supervisor.start('a');
        const startingB = pending(supervisor.start('b'));
        await waitFor(() => supervisor.limitStatus().queued === 1, { what: 'b queued', timeoutMs: DEADLINE_MS });
        assert.deepEqual(supervisor.setLimit(2), { old_limit: 1, new_limit: 2 });
        const report = await withDeadline(startingB, { what: 'start b', timeoutMs: DEADLINE_MS });
        assert.equal(report.service.state, 'running');
        assert.equal(supervisor.info('a').state, 'running');
        const status = supervisor.limitStatus();
        assert.equal(status.active_processes, 2);
        assert.equal(status.max_allowed, 2);
        // Lowering it stops nothing.
        assert.deepEqual(supervisor.setLimit(1), { old_limit: 2, new_limit: 1 });
        assert.equal(supervisor.info('a').state, 'running');
        assert.equal(supervisor.info('b').state, 'running');
        assert.equal(supervisor.limitStatus().utilization_percent, 200);
      });
    });
  });
});
