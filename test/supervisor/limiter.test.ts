// The concurrency limit: starts over the limit wait in FIFO order or are
// refused with LIMIT_REACHED, exempt starts never count, aborted waiters leave
// the queue without a slot, and changing the limit admits or holds back
// waiters without stopping anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { isTendError } from '../../src/core/errors.js';
import { ConcurrencyLimiter, type Lease } from '../../src/supervisor/limiter.js';

/** Lets every settled promise run its continuations. */
const settle = (): Promise<void> => turn();

/** Starts an acquisition and records, without awaiting, when it resolves or rejects. */
function track(promise: Promise<Lease>): { lease: Lease | undefined; error: unknown; done: boolean } {
  const state: { lease: Lease | undefined; error: unknown; done: boolean } = { lease: undefined, error: undefined, done: false };
  void promise.then(
    (lease) => Object.assign(state, { lease, done: true }),
    (error: unknown) => Object.assign(state, { error, done: true }),
  );
  return state;
}

test('20 starts with a limit of 3: never more than 3 run, and they are admitted in call order', async () => {
  const limiter = new ConcurrencyLimiter(3);
  const admitted: number[] = [];
  let most = 0;
  await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const lease = await limiter.acquire({ key: `job-${i}` });
      admitted.push(i);
      most = Math.max(most, limiter.status().active_processes);
      // Finish out of order: later jobs run for fewer turns.
      for (let n = 0; n < (i % 4) + 1; n++) await settle();
      lease.release();
    }),
  );
  assert.deepEqual(admitted, Array.from({ length: 20 }, (_, i) => i));
  assert.equal(most, 3);
  assert.deepEqual(limiter.status(), { active_processes: 0, max_allowed: 3, utilization_percent: 0, can_start_new: true, active_pids: [], starting: 0, queued: 0 });
});

test('a freed slot goes to the first waiter, not to a start that arrives after the release', async () => {
  const limiter = new ConcurrencyLimiter(1);
  const holder = await limiter.acquire({ key: 'a' });
  const waiter = track(limiter.acquire({ key: 'b' }));
  holder.release();
  // Before the waiter's continuation runs, the slot is already its.
  await assert.rejects(limiter.acquire({ key: 'c', queue: false }), (error) => isTendError(error, 'LIMIT_REACHED'));
  await settle();
  assert.equal(waiter.lease?.key, 'b');
  assert.equal(limiter.status().active_processes, 1);
});

test('queue: false is refused at once with LIMIT_REACHED naming the limit and the running count', async () => {
  const limiter = new ConcurrencyLimiter(3);
  const leases = await Promise.all(['a', 'b', 'c'].map((key) => limiter.acquire({ key })));
  limiter.setMax(2);
  await assert.rejects(limiter.acquire({ key: 'build-9', queue: false }), (error) => {
    assert.ok(isTendError(error, 'LIMIT_REACHED'));
    assert.deepEqual(error.details, { key: 'build-9', active: 3, max: 2 });
    assert.match(error.message, /"build-9"/);
    assert.match(error.message, /limit of 2 is reached \(3 running\)/);
    assert.match(error.message, /tend limit N/);
    assert.equal(error.isUsageError, false);
    return true;
  });
  assert.equal(limiter.status().queued, 0, 'a refused start must not be queued');
  for (const lease of leases) lease.release();
  const lease = await limiter.acquire({ key: 'd', queue: false });
  assert.equal(lease.exempt, false);
  assert.equal(limiter.status().active_processes, 1);
});

test('exempt starts never wait, are never refused, and are not counted', async () => {
  const limiter = new ConcurrencyLimiter(1);
  const held = await limiter.acquire({ key: 'worker' });
  held.attach(100);
  const waiter = track(limiter.acquire({ key: 'queued' }));
  const exempt = await limiter.acquire({ key: 'db', exempt: true });
  const refusedIfCounted = await limiter.acquire({ key: 'cache', exempt: true, queue: false });
  exempt.attach(200);
  assert.equal(exempt.exempt, true);
  assert.deepEqual(limiter.status(), { active_processes: 1, max_allowed: 1, utilization_percent: 100, can_start_new: false, active_pids: [100], starting: 0, queued: 1 });
  // Releasing an exempt lease frees nothing, so the waiter keeps waiting.
  exempt.release();
  refusedIfCounted.release();
  await settle();
  assert.equal(waiter.done, false);
  held.release();
  await settle();
  assert.equal(waiter.lease?.key, 'queued');
});

test('an aborted waiter leaves the queue with the abort reason and takes no slot', async () => {
  const limiter = new ConcurrencyLimiter(1);
  const holder = await limiter.acquire({ key: 'a' });
  const controller = new AbortController();
  const reason = new Error('start cancelled');
  const aborted = limiter.acquire({ key: 'b', signal: controller.signal });
  const next = track(limiter.acquire({ key: 'c' }));
  assert.equal(limiter.status().queued, 2);
  controller.abort(reason);
  await assert.rejects(aborted, (error) => error === reason);
  assert.equal(limiter.status().queued, 1);
  holder.release();
  await settle();
  assert.equal(next.lease?.key, 'c', 'the slot went to the waiter behind the aborted one');
  assert.equal(limiter.status().active_processes, 1);
  // Aborting after admission changes nothing: the lease is held until released.
  controller.abort();
  assert.equal(limiter.status().active_processes, 1);
});

test('an already aborted signal rejects without queuing or taking a slot', async () => {
  const limiter = new ConcurrencyLimiter(1);
  const reason = new Error('too late');
  await assert.rejects(limiter.acquire({ key: 'a', signal: AbortSignal.abort(reason) }), (error) => error === reason);
  assert.deepEqual(limiter.status(), { active_processes: 0, max_allowed: 1, utilization_percent: 0, can_start_new: true, active_pids: [], starting: 0, queued: 0 });
});

test('raising the limit admits waiters at once, in order', async () => {
  const limiter = new ConcurrencyLimiter(1);
  await limiter.acquire({ key: 'a' });
  const waiters = ['b', 'c', 'd'].map((key) => track(limiter.acquire({ key })));
  assert.equal(limiter.setMax(3), 1);
  await settle();
  assert.deepEqual(
    waiters.map((w) => w.lease?.key),
    ['b', 'c', undefined],
  );
  assert.deepEqual(limiter.status(), { active_processes: 3, max_allowed: 3, utilization_percent: 100, can_start_new: false, active_pids: [], starting: 3, queued: 1 });
});

test('lowering the limit stops nothing; new starts wait until the running count is below it', async () => {
  const limiter = new ConcurrencyLimiter(3);
  const leases = await Promise.all(['a', 'b', 'c'].map((key) => limiter.acquire({ key })));
  leases.forEach((lease, i) => lease.attach(10 + i));
  assert.equal(limiter.setMax(1), 3);
  assert.deepEqual(limiter.status(), { active_processes: 3, max_allowed: 1, utilization_percent: 300, can_start_new: false, active_pids: [10, 11, 12], starting: 0, queued: 0 });
  const waiter = track(limiter.acquire({ key: 'd' }));
  leases[0]?.release();
  leases[1]?.release();
  await settle();
  assert.equal(waiter.done, false, 'admitted while 1 was still running under a limit of 1');
  leases[2]?.release();
  await settle();
  assert.equal(waiter.lease?.key, 'd');
  assert.equal(limiter.status().utilization_percent, 100);
});

test('status has exactly the documented snake_case keys and integer percentages', async () => {
  const limiter = new ConcurrencyLimiter();
  assert.deepEqual(limiter.status(), { active_processes: 0, max_allowed: 5, utilization_percent: 0, can_start_new: true, active_pids: [], starting: 0, queued: 0 });
  assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(limiter.status())) as object), [
    'active_processes',
    'max_allowed',
    'utilization_percent',
    'can_start_new',
    'active_pids',
    'starting',
    'queued',
  ]);
  limiter.setMax(3);
  const first = await limiter.acquire({ key: 'a' });
  first.attach(4242);
  assert.equal(limiter.status().utilization_percent, 33);
  const second = await limiter.acquire({ key: 'b' });
  assert.equal(limiter.status().utilization_percent, 67);
  assert.deepEqual(limiter.status().active_pids, [4242], 'a lease without a pid counts but lists no pid');
  assert.equal(limiter.status().starting, 1, 'a lease without a pid is counted as starting');
  second.attach(17);
  first.attach(4243);
  assert.deepEqual(limiter.status().active_pids, [17, 4243], 'ascending, and attach replaces the pid');
  first.release();
  first.attach(99);
  assert.equal(first.pid, 4243, 'attach after release is ignored');
  assert.deepEqual(limiter.status().active_pids, [17]);
  assert.throws(() => second.attach(0), (error) => isTendError(error, 'SPEC_OPTION_INVALID'));
});

test('release is idempotent: a second call frees no second slot', async () => {
  const limiter = new ConcurrencyLimiter(2);
  const a = await limiter.acquire({ key: 'a' });
  await limiter.acquire({ key: 'b' });
  const c = track(limiter.acquire({ key: 'c' }));
  const d = track(limiter.acquire({ key: 'd' }));
  a.release();
  a.release();
  await settle();
  assert.equal(a.released, true);
  assert.equal(c.lease?.key, 'c');
  assert.equal(d.done, false, 'a double release admitted an extra waiter');
  assert.equal(limiter.status().active_processes, 2);
});

test('drainQueue rejects every waiter with the reason and leaves running leases alone', async () => {
  const limiter = new ConcurrencyLimiter(1);
  const holder = await limiter.acquire({ key: 'a' });
  const controller = new AbortController();
  const waiters = [
    track(limiter.acquire({ key: 'b' })),
    track(limiter.acquire({ key: 'c', signal: controller.signal })),
  ];
  const reason = new Error('shutting down');
  assert.equal(limiter.drainQueue(reason), 2);
  await settle();
  assert.deepEqual(
    waiters.map((w) => w.error),
    [reason, reason],
  );
  controller.abort();
  assert.deepEqual(limiter.status(), { active_processes: 1, max_allowed: 1, utilization_percent: 100, can_start_new: false, active_pids: [], starting: 1, queued: 0 });
  assert.equal(limiter.drainQueue(reason), 0);
  holder.release();
  const again = await limiter.acquire({ key: 'd', queue: false });
  assert.equal(again.key, 'd', 'the limiter keeps working after a drain');
});

test('the limit must be a positive integer', () => {
  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '5', null]) {
    assert.throws(
      () => new ConcurrencyLimiter(bad as number),
      (error) => isTendError(error, 'SPEC_OPTION_INVALID') && /Expected `max` to be a positive integer/.test(error.message),
      String(bad),
    );
  }
  const limiter = new ConcurrencyLimiter(2);
  assert.throws(() => limiter.setMax(0), (error) => isTendError(error, 'SPEC_OPTION_INVALID'));
  assert.equal(limiter.max, 2, 'a rejected setMax leaves the limit unchanged');
  assert.equal(new ConcurrencyLimiter().max, 5);
});

test('every counted slot is either listed by its pid or counted as starting, whatever order grants, attaches and releases come in', async () => {
  const limiter = new ConcurrencyLimiter(4);
  const check = (what: string): void => {
    const status = limiter.status();
    assert.equal(status.active_processes, status.active_pids.length + status.starting, `${what}: ${JSON.stringify(status)}`);
  };
  const leases = await Promise.all(['a', 'b', 'c', 'd'].map((key) => limiter.acquire({ key })));
  check('all granted, none spawned');
  assert.equal(limiter.status().starting, 4);
  leases[0]?.attach(10);
  leases[2]?.attach(12);
  check('two spawned');
  assert.deepEqual(limiter.status().active_pids, [10, 12]);
  assert.equal(limiter.status().starting, 2);
  leases[1]?.release();
  leases[0]?.release();
  leases[0]?.attach(99);
  check('one released before it spawned, one after; a late attach is ignored');
  assert.deepEqual({ pids: limiter.status().active_pids, starting: limiter.status().starting }, { pids: [12], starting: 1 });
});

test('a queued start hears its place when it enters the queue and each time it moves up; leaving the queue moves the rest', async () => {
  const limiter = new ConcurrencyLimiter(1);
  const holder = await limiter.acquire({ key: 'a' });
  const places: Record<string, number[]> = { b: [], c: [], d: [] };
  const controller = new AbortController();
  const b = track(limiter.acquire({ key: 'b', onQueued: (p) => places.b?.push(p.place) }));
  const c = limiter.acquire({ key: 'c', signal: controller.signal, onQueued: (p) => places.c?.push(p.place) });
  const d = track(limiter.acquire({ key: 'd', onQueued: (p) => {
    places.d?.push(p.place);
    assert.deepEqual({ active: p.active_processes, max: p.max_allowed }, { active: 1, max: 1 });
  } }));
  assert.deepEqual(places, { b: [1], c: [2], d: [3] });
  controller.abort(new Error('client gone'));
  await assert.rejects(c, /client gone/);
  assert.deepEqual(places, { b: [1], c: [2], d: [3, 2] }, 'd moves up when c leaves');
  holder.release();
  await settle();
  assert.equal(b.lease?.key, 'b');
  assert.deepEqual(places.d, [3, 2, 1], 'd moves up when b is admitted');
  b.lease?.release();
  await settle();
  assert.equal(d.lease?.key, 'd');
});
