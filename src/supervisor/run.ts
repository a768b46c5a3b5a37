/**
 * One start attempt of a service, from its first wait (dependencies, ports,
 * the limiter's queue) until its tree is gone. A run owns what must end with
 * it: the AbortController that cuts its waits short, and its slot under the
 * concurrency limit (a lease, or its place in the queue while it waits).
 *
 * A service has at most one current run. Work still in flight for a run that
 * is no longer current (a readiness wait, a spawn, a liveness probe) is stale
 * and undoes itself instead of acting on the run that replaced it.
 */
import type { ProcessHandle } from '../manager/process-handle.js';
import type { AcquireOptions, ConcurrencyLimiter, Lease } from './limiter.js';

export class Run {
  readonly #abort = new AbortController();
  #lease: Lease | undefined;
  /** The tree, once spawned: the run owns it until it exits. */
  handle: ProcessHandle | undefined;

  /** Aborted when the run ends: its waits (dependencies, queue, readiness) stop with the reason. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get ended(): boolean {
    return this.#abort.signal.aborted;
  }

  /** Ends the run's waits; the first reason given is the one they report. Its tree and slot are left to their owners. */
  end(reason: Error): void {
    if (!this.#abort.signal.aborted) this.#abort.abort(reason);
  }

  /** Takes a slot under the limit, waiting in its queue unless told not to; ending the run leaves the queue. */
  async acquireSlot(limiter: ConcurrencyLimiter, options: Omit<AcquireOptions, 'signal'>): Promise<void> {
    this.#lease = await limiter.acquire({ ...options, signal: this.signal });
  }

  /** Shows the tree's pid in the limiter's status. */
  attachPid(pid: number): void {
    this.#lease?.attach(pid);
  }

  /** Frees the slot (the tree is gone, or was never spawned). Calling it again does nothing. */
  releaseSlot(): void {
    this.#lease?.release();
    this.#lease = undefined;
  }
}
