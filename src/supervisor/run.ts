/**
 * One start attempt of a service, from its first wait (dependencies, ports,
 * the limiter's queue) until its tree is gone. A run owns what must end with
 * it: the AbortController that cuts its waits short, and its slot under the
 * concurrency limit (a lease, or its place in the queue while it waits).
 *
 * A service has at most one current run. Work still in flight for a run that
 * is no longer current (a readiness wait, a spawn, a liveness probe) is stale
 * and undoes itself instead of acting on the run that replaced it.
 *
 * Withdrawal: the starts that asked for a run (a client's start, and any
 * start of the same service that came while it waited) each keep it with
 * their client's signal. When every one of them has gone away before the
 * tree was spawned, the run is withdrawn: its waits end and the service ends
 * stopped. A start without a signal (the daemon's own restarts, `tend up` in
 * the foreground) keeps it for good. Once spawned, nobody can withdraw it:
 * the tree runs as any started service does.
 */
import type { ProcessHandle } from '../manager/process-handle.js';
import type { AcquireOptions, ConcurrencyLimiter, Lease, QueuePlace } from './limiter.js';

/** The reason a withdrawn run's waits end with, and its service's reason. */
export const WITHDRAWN_REASON = 'withdrawn: the client went away';

export class Run {
  readonly #abort = new AbortController();
  #lease: Lease | undefined;
  /** Starts that keep the run (their clients are still there); Infinity once one without a signal asked. */
  #keepers = 0;
  #spawning = false;
  #withdrawn = false;
  readonly #forgetKeepers: (() => void)[] = [];
  readonly #queueWatchers = new Set<(place: QueuePlace) => void>();
  #place: QueuePlace | undefined;
  /** The tree, once spawned: the run owns it until it exits. */
  handle: ProcessHandle | undefined;

  /** Aborted when the run ends: its waits (dependencies, queue, readiness) stop with the reason. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get ended(): boolean {
    return this.#abort.signal.aborted;
  }

  /** Every start that asked for it went away before its tree was spawned. */
  get withdrawn(): boolean {
    return this.#withdrawn;
  }

  /** Ends the run's waits; the first reason given is the one they report. Its tree and slot are left to their owners. */
  end(reason: Error): void {
    if (!this.#abort.signal.aborted) this.#abort.abort(reason);
  }

  /**
   * One more start asks for this run: it is kept until `signal` aborts (its
   * client went away), or for good without a signal. `onQueued` hears where
   * the run stands in the limiter's queue, now if it already waits there.
   */
  keepFor(signal: AbortSignal | undefined, onQueued?: (place: QueuePlace) => void): void {
    if (onQueued && !this.#spawning) {
      this.#queueWatchers.add(onQueued);
      if (this.#place) onQueued(this.#place);
    }
    if (signal === undefined) {
      this.#keepers = Infinity;
      return;
    }
    if (this.#spawning) return;
    if (signal.aborted) {
      // Its client left before the run began (a restart's stop took a while): nobody else asked yet.
      if (this.#keepers === 0) this.#withdraw();
      return;
    }
    this.#keepers++;
    const onAbort = (): void => {
      if (onQueued) this.#queueWatchers.delete(onQueued);
      this.#keepers--;
      // The last client left while the run still waits: nobody wants what it would start.
      if (this.#keepers === 0 && !this.#spawning) this.#withdraw();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    this.#forgetKeepers.push(() => signal.removeEventListener('abort', onAbort));
  }

  #withdraw(): void {
    this.#withdrawn = true;
    this.end(new Error(WITHDRAWN_REASON));
  }

  /**
   * The tree is about to be spawned: from here on a client that goes away
   * withdraws nothing. Throws the end reason if the run was withdrawn (or
   * ended) first, so that nothing is spawned for it.
   */
  commitToSpawn(): void {
    this.#abort.signal.throwIfAborted();
    this.#spawning = true;
    for (const forget of this.#forgetKeepers.splice(0)) forget();
    this.#queueWatchers.clear();
  }

  /** Takes a slot under the limit, waiting in its queue unless told not to; ending the run leaves the queue. */
  async acquireSlot(limiter: ConcurrencyLimiter, options: Omit<AcquireOptions, 'signal' | 'onQueued'>): Promise<void> {
    const onQueued = (place: QueuePlace): void => {
      this.#place = place;
      for (const watcher of this.#queueWatchers) watcher(place);
    };
    try {
      this.#lease = await limiter.acquire({ ...options, signal: this.signal, onQueued });
    } finally {
      this.#place = undefined;
    }
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
