// The supervisor in-process, against real process trees. The concurrency limit:
// queued starts, refusals, exempt services, starts withdrawn when their
// client goes away, and counts that agree with the pids listed. Every wait is for an event or a
// condition with a deadline; after each test nothing the services started may
// be alive.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor, withDeadline } from '../helpers/wait.js';
import { checkNothingSurvives, DEADLINE_MS, svc, byTag, withSupervisor, pending, rejectsWith, indexOf, waitForService } from './harness.js';
import type { QueuePlace } from '../../src/supervisor/limiter.js';

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
    test('a queued start whose client goes away is withdrawn: stopped, not wanted, and it does not start when the slot frees', async () => {
      await withSupervisor('limit-withdraw', { maxConcurrent: 1 }, async ({ supervisor }) => {
        supervisor.define(svc('a'));
        const b = svc('b');
        supervisor.define(b);
        await supervisor.start('a');
        const client = new AbortController();
        const places: QueuePlace[] = [];
        const startingB = pending(supervisor.start('b', { signal: client.signal, onQueued: (place) => places.push(place) }));
        await waitFor(() => places.length > 0, { what: 'b told it is queued', timeoutMs: DEADLINE_MS });
        assert.deepEqual(places, [{ place: 1, queued: 1, active_processes: 1, max_allowed: 1 }]);
        client.abort(new Error('the client disconnected'));
        await rejectsWith(startingB, 'SERVICE_START_FAILED', 'the withdrawn start of b');
        const info = supervisor.info('b');
        assert.equal(info.state, 'stopped');
        assert.match(info.reason ?? '', /withdrawn: the client went away/);
        assert.equal(supervisor.limitStatus().queued, 0, 'the withdrawn start left the queue');
        await supervisor.stop(['a']);
        // The slot is free now: a start still queued would have been granted it, synchronously, by the stop.
        assert.equal(supervisor.limitStatus().active_processes, 0);
        assert.equal(supervisor.info('b').state, 'stopped');
        assert.deepEqual(byTag(b), []);
      });
    });

    test('two clients start the same queued service: one going away withdraws nothing; it starts for the other', async () => {
      await withSupervisor('limit-two-clients', { maxConcurrent: 1 }, async ({ supervisor }) => {
        supervisor.define(svc('a'));
        supervisor.define(svc('b'));
        await supervisor.start('a');
        const first = new AbortController();
        const second = new AbortController();
        const heardBySecond: number[] = [];
        const startedByFirst = pending(supervisor.start('b', { signal: first.signal }));
        await waitFor(() => supervisor.limitStatus().queued === 1, { what: 'b queued', timeoutMs: DEADLINE_MS });
        const startedBySecond = pending(supervisor.start('b', { signal: second.signal, onQueued: (p) => heardBySecond.push(p.place) }));
        assert.deepEqual(heardBySecond, [1], 'a client joining a queued run hears its place at once');
        first.abort(new Error('the first client disconnected'));
        await supervisor.stop(['a']);
        const report = await withDeadline(startedBySecond, { what: 'the second start of b', timeoutMs: DEADLINE_MS });
        assert.equal(report.service.state, 'running');
        await withDeadline(startedByFirst, { what: 'the first start of b', timeoutMs: DEADLINE_MS });
        assert.equal(supervisor.info('b').state, 'running');
      });
    });

    test('a start without a signal (the daemon\'s own) is never withdrawn; nor is one whose tree was spawned', async () => {
      await withSupervisor('limit-not-withdrawn', { maxConcurrent: 2 }, async ({ supervisor }) => {
        supervisor.define(svc('a'));
        supervisor.define(svc('b'));
        const client = new AbortController();
        await supervisor.start('a', { signal: client.signal });
        client.abort(new Error('the client disconnected after the start'));
        assert.equal(supervisor.info('a').state, 'running');
        const startingB = pending(supervisor.start('b'));
        const gone = new AbortController();
        const startedByGone = pending(supervisor.start('b', { signal: gone.signal }));
        gone.abort(new Error('gone'));
        const report = await withDeadline(startingB, { what: 'start b', timeoutMs: DEADLINE_MS });
        assert.equal(report.service.state, 'running');
        // The start whose client left is answered (to nobody) without touching the one that runs.
        await rejectsWith(startedByGone, 'SERVICE_START_FAILED', 'the start of b whose client left');
        assert.equal(supervisor.info('b').state, 'running');
      });
    });

    test('a slot taken by a start that has not spawned yet is counted as starting, so that active_processes = active_pids + starting', async () => {
      await withSupervisor('limit-starting', { maxConcurrent: 3 }, async ({ supervisor, manager }) => {
        let open!: () => void;
        const gate = new Promise<void>((resolve) => (open = resolve));
        let held = 0;
        // A plugin that holds the spawn of b: its slot is taken, its tree not there yet.
        manager.registerPlugin({ name: 'hold-b', priority: 0, isApplicable: (spec) => spec.name === 'b', enhance: async (spec) => { held++; await gate; return spec; } });
        supervisor.define(svc('a'));
        supervisor.define(svc('b'));
        await supervisor.start('a');
        const startingB = pending(supervisor.start('b'));
        await waitFor(() => held === 1, { what: 'the spawn of b to be held', timeoutMs: DEADLINE_MS });
        const during = supervisor.limitStatus();
        assert.deepEqual(
          { active: during.active_processes, pids: during.active_pids, starting: during.starting },
          { active: 2, pids: [supervisor.info('a').pid], starting: 1 },
        );
        open();
        await withDeadline(startingB, { what: 'start b', timeoutMs: DEADLINE_MS });
        await waitForService(supervisor, 'b', (info) => info.pid !== null, 'b spawned');
        const after = supervisor.limitStatus();
        assert.equal(after.active_processes, after.active_pids.length + after.starting);
        assert.deepEqual({ pids: after.active_pids, starting: after.starting }, { pids: [supervisor.info('a').pid, supervisor.info('b').pid].sort((x, y) => (x as number) - (y as number)), starting: 0 });
      });
    });
  });
});
