/**
 * The supervisor's limit on concurrently running managed processes. A start
 * takes a lease before it spawns and releases it when the tree is gone; over
 * the limit a start waits in a first-come, first-served queue, or is refused
 * with LIMIT_REACHED when it asked not to queue. Exempt starts (services
 * marked `exemptFromLimit`) neither count nor wait. Changing the limit never
 * stops anything: a lower limit only makes new starts wait.
 *
 * Pure bookkeeping: no processes, no timers. The caller attaches the pid once
 * it has one, so `status()` can list it. A slot is taken before the spawn
 * (and the spawn of a contained tree, with its record and the reaper's
 * registration, takes a while under load), so some counted slots have no pid
 * yet: `status()` counts them as `starting`, and always
 * `active_processes == active_pids.length + starting`.
 */
import { TendError } from '../core/errors.js';

export const DEFAULT_MAX_CONCURRENT = 5;

export interface AcquireOptions {
  /** What is being started (a service or process name): named in LIMIT_REACHED. */
  readonly key: string;
  /** Never counted against the limit and never waits. */
  readonly exempt?: boolean;
  /** Wait for a free slot (the default); `false` refuses at once with LIMIT_REACHED. */
  readonly queue?: boolean;
  /** Aborting leaves the queue: acquire() rejects with the abort reason and takes no slot. */
  readonly signal?: AbortSignal | undefined;
  /** Told when the start enters the queue, and again each time its place (1 = next in line) changes. */
  readonly onQueued?: ((place: QueuePlace) => void) | undefined;
}

/** Where a waiting start stands: its place in line (1 = next) and what holds it back. */
export interface QueuePlace {
  readonly place: number;
  readonly queued: number;
  readonly active_processes: number;
  readonly max_allowed: number;
}

/** One slot (or an exempt pass) held by a start. */
export interface Lease {
  readonly key: string;
  readonly exempt: boolean;
  /** The pid attached last, if any. */
  readonly pid: number | undefined;
  readonly released: boolean;
  /** Records the running pid for `active_pids`; a later call replaces it (e.g. after a restart). Ignored once released. */
  attach(pid: number): void;
  /** Frees the slot and admits the next waiter. Calling it again does nothing. */
  release(): void;
}

/** The JSON shape of `tend limit --json` and of the HTTP status: keys as the issue names them. */
export interface LimiterStatus {
  readonly active_processes: number;
  readonly max_allowed: number;
  /** Rounded to an integer; above 100 when the limit was lowered below the running count. */
  readonly utilization_percent: number;
  readonly can_start_new: boolean;
  /** Pids attached to counted leases, ascending. Exempt processes are not listed, as they are not counted. */
  readonly active_pids: number[];
  /** Counted slots whose start has not spawned its tree yet (no pid to list): active_processes = active_pids.length + starting. */
  readonly starting: number;
  readonly queued: number;
}

interface Waiter {
  readonly key: string;
  readonly resolve: (lease: Lease) => void;
  readonly reject: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
  readonly onQueued: ((place: QueuePlace) => void) | undefined;
}

class SlotLease implements Lease {
  pid: number | undefined;
  released = false;

  constructor(
    readonly key: string,
    readonly exempt: boolean,
    private readonly onRelease: (lease: SlotLease) => void,
  ) {}

  attach(pid: number): void {
    if (!Number.isSafeInteger(pid) || pid <= 0) {
      throw new TendError('SPEC_OPTION_INVALID', { field: 'pid', expected: 'a positive integer', value: pid });
    }
    if (!this.released) this.pid = pid;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease(this);
  }
}

function validateMax(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new TendError('SPEC_OPTION_INVALID', { field: 'max', expected: 'a positive integer', value });
  }
  return value;
}

export class ConcurrencyLimiter {
  #max: number;
  readonly #active = new Set<SlotLease>();
  readonly #queue: Waiter[] = [];

  constructor(max: number = DEFAULT_MAX_CONCURRENT) {
    this.#max = validateMax(max);
  }

  get max(): number {
    return this.#max;
  }

  /**
   * Resolves with a lease once the start may proceed. Rejects with
   * LIMIT_REACHED (`queue: false`, limit reached) or with the signal's abort
   * reason (aborted before or while queued).
   */
  async acquire(options: AcquireOptions): Promise<Lease> {
    const { key, exempt = false, queue = true, signal, onQueued } = options;
    signal?.throwIfAborted();
    if (exempt) return new SlotLease(key, true, () => {});
    // A non-empty queue means every slot is taken (#admitWaiters runs after
    // each change), but checking it too keeps newcomers from ever jumping it.
    if (this.#active.size < this.#max && this.#queue.length === 0) return this.#grant(key);
    if (!queue) throw new TendError('LIMIT_REACHED', { key, active: this.#active.size, max: this.#max });
    return new Promise<Lease>((resolve, reject) => {
      const waiter: Waiter = { key, resolve, reject, signal, onAbort: () => this.#abandon(waiter), onQueued };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.#queue.push(waiter);
      this.#announcePlaces(this.#queue.length - 1);
    });
  }

  /** Changes the limit and returns the previous one. Raising it admits waiters at once; lowering it stops nothing. */
  setMax(max: number): number {
    const previous = this.#max;
    this.#max = validateMax(max);
    this.#admitWaiters();
    return previous;
  }

  status(): LimiterStatus {
    const active = this.#active.size;
    const pids: number[] = [];
    for (const lease of this.#active) if (lease.pid !== undefined) pids.push(lease.pid);
    return {
      active_processes: active,
      max_allowed: this.#max,
      utilization_percent: Math.round((active / this.#max) * 100),
      can_start_new: active < this.#max && this.#queue.length === 0,
      active_pids: pids.sort((a, b) => a - b),
      starting: active - pids.length,
      queued: this.#queue.length,
    };
  }

  /** Rejects every queued start with `reason` (kill-all, shutdown) and returns how many there were. Held leases stay. */
  drainQueue(reason: unknown): number {
    const waiters = this.#queue.splice(0);
    for (const waiter of waiters) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(reason);
    }
    return waiters.length;
  }

  #abandon(waiter: Waiter): void {
    const index = this.#queue.indexOf(waiter);
    // Already admitted or drained: the abort came too late to matter.
    if (index === -1) return;
    this.#queue.splice(index, 1);
    waiter.reject(waiter.signal?.reason);
    this.#announcePlaces(index);
  }

  /** Tells each waiter from `from` on its place; a listener that throws cannot break the queue. */
  #announcePlaces(from: number): void {
    const queued = this.#queue.length;
    for (let i = from; i < queued; i++) {
      const waiter = this.#queue[i];
      try {
        waiter?.onQueued?.({ place: i + 1, queued, active_processes: this.#active.size, max_allowed: this.#max });
      } catch {
        // Progress is advice to a client; the queue's order does not depend on it.
      }
    }
  }

  #grant(key: string): SlotLease {
    const lease = new SlotLease(key, false, (released) => {
      this.#active.delete(released);
      this.#admitWaiters();
    });
    this.#active.add(lease);
    return lease;
  }

  // The slot passes to the waiter here, synchronously inside release() or
  // setMax(), not when its promise continuation runs: otherwise a newcomer
  // calling acquire() in between would find the slot free and take it ahead
  // of the queue.
  #admitWaiters(): void {
    let admitted = 0;
    while (this.#active.size < this.#max) {
      const waiter = this.#queue.shift();
      if (waiter === undefined) break;
      admitted++;
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve(this.#grant(waiter.key));
    }
    if (admitted > 0) this.#announcePlaces(0);
  }
}
