// Restart decisions: each case is a sequence of exits fed to one tracker and
// the decision expected after each, with the times written out (no clock).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isTendError } from '../../src/core/errors.js';
import type { RestartLimit, RestartPolicy } from '../../src/stack/config.js';
import {
  DEFAULT_STABLE_PERIOD_MS,
  RestartTracker,
  computeBackoffMs,
  type RestartDecision,
  type ServiceExit,
} from '../../src/supervisor/restart-policy.js';

/** An exit after a run of `ranMs`; times are laid end to end by `runExits`. */
interface Run {
  readonly ranMs: number;
  readonly code?: number | null;
  readonly signal?: string | null;
  readonly byUser?: boolean;
}

interface Case {
  readonly name: string;
  readonly policy: RestartPolicy;
  readonly limit?: RestartLimit;
  readonly stablePeriodMs?: number;
  readonly runs: readonly Run[];
  readonly expected: readonly RestartDecision[];
}

const limit = (maxRestarts: number, backoffMs = 100, maxBackoffMs = 1000): RestartLimit => ({ maxRestarts, backoffMs, maxBackoffMs });
const crash = (ranMs = 50, code = 1): Run => ({ ranMs, code });
const restart = (attempt: number, delayMs: number): RestartDecision => ({ kind: 'restart', attempt, delayMs });

const cases: readonly Case[] = [
  {
    name: 'backoff doubles from backoffMs and stops at maxBackoffMs',
    policy: 'always',
    limit: limit(10, 100, 1000),
    runs: [crash(), crash(), crash(), crash(), crash(), crash()],
    expected: [restart(1, 100), restart(2, 200), restart(3, 400), restart(4, 800), restart(5, 1000), restart(6, 1000)],
  },
  {
    name: 'a run of the stable period resets the count and the backoff',
    policy: 'on-failure',
    limit: limit(3),
    runs: [crash(), crash(), crash(DEFAULT_STABLE_PERIOD_MS), crash(), crash(DEFAULT_STABLE_PERIOD_MS - 1)],
    expected: [restart(1, 100), restart(2, 200), restart(1, 100), restart(2, 200), restart(3, 400)],
  },
  {
    name: 'a custom stable period is honoured',
    policy: 'always',
    limit: limit(5),
    stablePeriodMs: 500,
    runs: [crash(), crash(), crash(500)],
    expected: [restart(1, 100), restart(2, 200), restart(1, 100)],
  },
  {
    name: 'gives up after maxRestarts crashes in a row, naming the last exit code',
    policy: 'on-failure',
    limit: limit(2),
    runs: [crash(), crash(10, 3), crash(10, 7)],
    expected: [restart(1, 100), restart(2, 200), { kind: 'failed', reason: 'gave up after 2 restarts in a row: last exit code 7' }],
  },
  {
    name: 'gives up naming the signal when the last run was killed',
    policy: 'on-failure',
    limit: limit(1),
    runs: [crash(), { ranMs: 5, code: null, signal: 'SIGSEGV' }],
    expected: [restart(1, 100), { kind: 'failed', reason: 'gave up after 1 restarts in a row: last killed by SIGSEGV' }],
  },
  {
    name: 'maxRestarts 0 gives up at the first crash',
    policy: 'always',
    limit: limit(0),
    runs: [crash(10, 2)],
    expected: [{ kind: 'failed', reason: 'gave up after 0 restarts in a row: last exit code 2' }],
  },
  {
    name: 'on-failure leaves a clean exit stopped',
    policy: 'on-failure',
    limit: limit(5),
    runs: [crash(), { ranMs: 5, code: 0 }],
    expected: [restart(1, 100), { kind: 'stop', reason: 'exited cleanly' }],
  },
  {
    name: 'on-failure restarts a death by signal',
    policy: 'on-failure',
    limit: limit(5),
    runs: [{ ranMs: 5, code: null, signal: 'SIGKILL' }],
    expected: [restart(1, 100)],
  },
  {
    name: 'always restarts a clean exit too, and counts it',
    policy: 'always',
    limit: limit(1),
    runs: [{ ranMs: 5, code: 0 }, { ranMs: 5, code: 0 }],
    expected: [restart(1, 100), { kind: 'failed', reason: 'gave up after 1 restarts in a row: last exit code 0' }],
  },
  {
    name: 'never restarts nothing, crash or not',
    policy: 'never',
    limit: limit(5),
    runs: [crash(), { ranMs: 5, code: 0 }],
    expected: [
      { kind: 'stop', reason: 'policy never' },
      { kind: 'stop', reason: 'policy never' },
    ],
  },
  {
    name: 'a stop the user asked for is never restarted, whatever the exit',
    policy: 'always',
    limit: limit(5),
    runs: [{ ranMs: 5, code: 143, byUser: true }, { ranMs: 5, code: null, signal: 'SIGKILL', byUser: true }],
    expected: [
      { kind: 'stop', reason: 'stopped by user' },
      { kind: 'stop', reason: 'stopped by user' },
    ],
  },
  {
    name: 'without a restart limit, restarts never run out and use the default backoff',
    policy: 'always',
    runs: Array.from({ length: 8 }, () => crash()),
    expected: [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000].map((delayMs, i) => restart(i + 1, delayMs)),
  },
];

function runExits(tracker: RestartTracker, runs: readonly Run[]): RestartDecision[] {
  let now = 1_000_000;
  return runs.map((run) => {
    const exit: ServiceExit = {
      startedAt: now,
      exitedAt: now + run.ranMs,
      code: run.code === undefined ? 1 : run.code,
      signal: run.signal ?? null,
      requestedByUser: run.byUser ?? false,
    };
    now = exit.exitedAt + 1;
    return tracker.decideAfterExit(exit);
  });
}

for (const c of cases) {
  test(c.name, () => {
    const tracker = new RestartTracker({ policy: c.policy, limit: c.limit, ...(c.stablePeriodMs === undefined ? {} : { stablePeriodMs: c.stablePeriodMs }) });
    assert.deepEqual(runExits(tracker, c.runs), c.expected);
  });
}

test('the stable period defaults to 10 s', () => {
  assert.equal(DEFAULT_STABLE_PERIOD_MS, 10_000);
});

test('reset() forgets the restarts in a row', () => {
  const tracker = new RestartTracker({ policy: 'always', limit: limit(1) });
  assert.deepEqual(runExits(tracker, [crash()]), [restart(1, 100)]);
  assert.equal(tracker.restartsInARow, 1);
  tracker.reset();
  assert.equal(tracker.restartsInARow, 0);
  assert.deepEqual(runExits(tracker, [crash()]), [restart(1, 100)]);
});

test('computeBackoffMs does not overflow for large attempts', () => {
  assert.equal(computeBackoffMs(limit(Infinity, 100, 5000), 2000), 5000);
});

test('a negative stable period is rejected naming the option', () => {
  assert.throws(
    () => new RestartTracker({ policy: 'always', stablePeriodMs: -1 }),
    (error: unknown) => isTendError(error, 'SPEC_OPTION_INVALID') && error.message.includes('`stablePeriodMs`') && error.message.includes('-1 (number)'),
  );
});
