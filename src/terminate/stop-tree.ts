import { TendError, isTendError } from '../core/errors.js';
import type { SignalName } from '../core/signals.js';
import type { Containment } from '../platform/strategy.js';

export interface StopPlan {
  readonly signal: SignalName;
  readonly timeoutMs: number;
  /** Label for errors. */
  readonly handle: string;
}

export interface TreeStopOutcome {
  readonly alreadyGone: boolean;
  readonly forced: boolean;
}

/** How long each SIGKILL pass waits before the next, and how many there are; a member that survives them all is stuck in the kernel (state D). */
export interface KillPasses {
  readonly passMs: number;
  readonly passes: number;
}
const KILL_PASSES: KillPasses = { passMs: 1000, passes: 10 };

/**
 * Stops a whole tree: the stop signal to every member, then wait until every
 * member is gone; at the deadline SIGKILL, wait, and repeat until none is left.
 * Idempotent: an empty tree returns at once with alreadyGone. `kill` is
 * there for tests, whose fake trees need not wait a second per pass.
 */
export async function stopTree(tree: Containment, plan: StopPlan, kill: KillPasses = KILL_PASSES): Promise<TreeStopOutcome> {
  if (tree.isEmpty()) return { alreadyGone: true, forced: false };
  let denied: TendError | undefined;
  if (plan.signal !== 'SIGKILL' && plan.timeoutMs > 0) {
    try {
      tree.signal(plan.signal);
      if (await waitEmptyFor(tree, plan.timeoutMs)) return { alreadyGone: false, forced: false };
    } catch (error) {
      // A member of another user refused the stop signal: SIGKILL may still
      // reach it (cgroup.kill needs no per-process permission) and reaches the rest.
      if (!isTendError(error, 'SIGNAL_DENIED')) throw error;
      denied = error;
    }
  }
  for (let pass = 0; pass < kill.passes; pass++) {
    try {
      tree.signal('SIGKILL');
    } catch (error) {
      if (!isTendError(error, 'SIGNAL_DENIED')) throw error;
      denied = error;
    }
    if (await waitEmptyFor(tree, kill.passMs)) return { alreadyGone: false, forced: true };
  }
  throw stuck(tree, plan, denied);
}

async function waitEmptyFor(tree: Containment, ms: number): Promise<boolean> {
  const deadline = AbortSignal.timeout(ms);
  try {
    await tree.waitEmpty(deadline);
    return true;
  } catch (error) {
    // Timers reject with an AbortError wrapping the reason, watchers with the reason itself: ask the signal.
    if (deadline.aborted) return false;
    throw error;
  }
}

function stuck(tree: Containment, plan: StopPlan, denied: TendError | undefined): TendError {
  const pids = tree.members();
  const reason = denied
    ? `the kernel refused the signal (${denied.message})`
    : 'they ignore SIGKILL, which only a process in uninterruptible sleep (state D, usually stuck I/O) does';
  return new TendError('STOP_FAILED', { handle: plan.handle, count: pids.length, pids: pids.join(', '), reason }, { cause: denied });
}

/** On the exit path one tree's failure must not spare the others. */
function trySignal(tree: Containment, signal: SignalName): void {
  try {
    tree.signal(signal);
  } catch {
    // SIGNAL_DENIED or a cgroupfs error: the kill passes below, and the reaper, still try.
  }
}

/**
 * The same for the host's exit path, where nothing can be awaited: all trees
 * are signalled at once, then polled with short blocking waits.
 */
export function stopTreesSync(trees: readonly { tree: Containment; plan: StopPlan }[], force = false): void {
  const live = trees.filter(({ tree }) => !tree.isEmpty());
  const graceful = force ? [] : live.filter(({ plan }) => plan.signal !== 'SIGKILL' && plan.timeoutMs > 0);
  for (const { tree, plan } of graceful) trySignal(tree, plan.signal);
  const start = Date.now();
  const deadline = start + Math.max(0, ...graceful.map(({ plan }) => plan.timeoutMs));
  let pending = live.filter(({ tree }) => !tree.isEmpty());
  for (let interval = 1; pending.length > 0 && Date.now() < deadline; interval = Math.min(interval * 2, 20)) {
    for (const { tree, plan } of pending) if (Date.now() - start >= plan.timeoutMs) trySignal(tree, 'SIGKILL');
    blockFor(interval);
    pending = pending.filter(({ tree }) => !tree.isEmpty());
  }
  const killDeadline = Date.now() + KILL_PASSES.passMs * 2;
  for (let interval = 1; pending.length > 0 && Date.now() < killDeadline; interval = Math.min(interval * 2, 20)) {
    for (const { tree } of pending) trySignal(tree, 'SIGKILL');
    blockFor(interval);
    pending = pending.filter(({ tree }) => !tree.isEmpty());
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function blockFor(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}
