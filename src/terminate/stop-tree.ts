import { TendError } from '../core/errors.js';
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

/** How long each SIGKILL pass waits before the next; a member that survives many passes is stuck in the kernel (state D). */
const KILL_PASS_MS = 1000;
const KILL_PASSES = 10;

/**
 * Stops a whole tree: the stop signal to every member, then wait until every
 * member is gone; at the deadline SIGKILL, wait, and repeat until none is left.
 * Idempotent: an empty tree returns at once with alreadyGone.
 */
export async function stopTree(tree: Containment, plan: StopPlan): Promise<TreeStopOutcome> {
  if (tree.isEmpty()) return { alreadyGone: true, forced: false };
  if (plan.signal !== 'SIGKILL' && plan.timeoutMs > 0) {
    if (!tree.signal(plan.signal)) return { alreadyGone: true, forced: false };
    if (await waitEmptyFor(tree, plan.timeoutMs)) return { alreadyGone: false, forced: false };
  }
  for (let pass = 0; pass < KILL_PASSES; pass++) {
    tree.signal('SIGKILL');
    if (await waitEmptyFor(tree, KILL_PASS_MS)) return { alreadyGone: false, forced: true };
  }
  throw stuck(tree, plan);
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

function stuck(tree: Containment, plan: StopPlan): TendError {
  const pids = tree.members();
  return new TendError('STOP_FAILED', {
    handle: plan.handle,
    count: pids.length,
    pids: pids.join(', '),
    reason: 'they ignore SIGKILL, which only a process in uninterruptible sleep (state D, usually stuck I/O) does',
  });
}

/**
 * The same for the host's exit path, where nothing can be awaited: all trees
 * are signalled at once, then polled with short blocking waits.
 */
export function stopTreesSync(trees: readonly { tree: Containment; plan: StopPlan }[]): void {
  const live = trees.filter(({ tree }) => !tree.isEmpty());
  const graceful = live.filter(({ plan }) => plan.signal !== 'SIGKILL' && plan.timeoutMs > 0);
  for (const { tree, plan } of graceful) tree.signal(plan.signal);
  const start = Date.now();
  const deadline = start + Math.max(0, ...graceful.map(({ plan }) => plan.timeoutMs));
  let pending = live.filter(({ tree }) => !tree.isEmpty());
  for (let interval = 1; pending.length > 0 && Date.now() < deadline; interval = Math.min(interval * 2, 20)) {
    for (const { tree, plan } of pending) if (Date.now() - start >= plan.timeoutMs) tree.signal('SIGKILL');
    blockFor(interval);
    pending = pending.filter(({ tree }) => !tree.isEmpty());
  }
  const killDeadline = Date.now() + KILL_PASS_MS * 2;
  for (let interval = 1; pending.length > 0 && Date.now() < killDeadline; interval = Math.min(interval * 2, 20)) {
    for (const { tree } of pending) tree.signal('SIGKILL');
    blockFor(interval);
    pending = pending.filter(({ tree }) => !tree.isEmpty());
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function blockFor(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}
