/**
 * What the supervisor does after a service exits: restart it after a delay,
 * leave it stopped, or give up on it. Pure logic with no timers and no clock:
 * every exit carries its own start and exit times, so the decisions are the
 * same in tests as in production.
 */
import { TendError } from '../core/errors.js';
import { DEFAULT_RESTART_BACKOFF_MS, DEFAULT_RESTART_MAX_BACKOFF_MS, type RestartLimit, type RestartPolicy } from '../service/definition.js';

/** A run at least this long counts as healthy: the next crash starts the backoff over. */
export const DEFAULT_STABLE_PERIOD_MS = 10_000;

/** With no `restart_limit`, restarts never run out; the delay still grows. */
export const UNLIMITED_RESTARTS: RestartLimit = {
  maxRestarts: Number.POSITIVE_INFINITY,
  backoffMs: DEFAULT_RESTART_BACKOFF_MS,
  maxBackoffMs: DEFAULT_RESTART_MAX_BACKOFF_MS,
};

/** One exit of a service, with the times (in ms, from any one clock) it started and exited. */
export interface ServiceExit {
  readonly startedAt: number;
  readonly exitedAt: number;
  /** The exit code, or null when a signal killed it. */
  readonly code: number | null;
  /** The signal that killed it, e.g. "SIGSEGV", or null when it exited. */
  readonly signal: string | null;
  /** The user asked for this stop (tend stop, shutdown): never restarted. */
  readonly requestedByUser: boolean;
}

export type StopReason = 'stopped by user' | 'policy never' | 'exited cleanly';

export type RestartDecision =
  | { readonly kind: 'restart'; readonly delayMs: number; readonly attempt: number }
  | { readonly kind: 'stop'; readonly reason: StopReason }
  | { readonly kind: 'failed'; readonly reason: string };

export interface RestartTrackerOptions {
  readonly policy: RestartPolicy;
  /** Undefined means no limit on restarts, with the default backoff. */
  readonly limit?: RestartLimit | undefined;
  readonly stablePeriodMs?: number;
}

/** The delay before restart number `attempt` (1-based): `backoffMs` doubling each time, capped at `maxBackoffMs`. */
export function computeBackoffMs(limit: RestartLimit, attempt: number): number {
  return Math.min(limit.backoffMs * 2 ** (attempt - 1), limit.maxBackoffMs);
}

/** Counts the restarts in a row of one service and decides what follows each exit. */
export class RestartTracker {
  readonly #policy: RestartPolicy;
  readonly #limit: RestartLimit;
  readonly #stablePeriodMs: number;
  #restartsInARow = 0;

  constructor(options: RestartTrackerOptions) {
    const stablePeriodMs = options.stablePeriodMs ?? DEFAULT_STABLE_PERIOD_MS;
    if (!Number.isFinite(stablePeriodMs) || stablePeriodMs < 0) {
      throw new TendError('SPEC_OPTION_INVALID', { field: 'stablePeriodMs', expected: 'a non-negative number of milliseconds', value: stablePeriodMs });
    }
    this.#policy = options.policy;
    this.#limit = options.limit ?? UNLIMITED_RESTARTS;
    this.#stablePeriodMs = stablePeriodMs;
  }

  /** Restarts since the last run that lasted the stable period (or since the last reset). */
  get restartsInARow(): number {
    return this.#restartsInARow;
  }

  /** Forgets the restarts in a row, e.g. when the user starts the service again by hand. */
  reset(): void {
    this.#restartsInARow = 0;
  }

  /** Decides what follows `exit`, and counts the restart when the answer is one. */
  decideAfterExit(exit: ServiceExit): RestartDecision {
    if (exit.exitedAt - exit.startedAt >= this.#stablePeriodMs) this.#restartsInARow = 0;
    if (exit.requestedByUser) return { kind: 'stop', reason: 'stopped by user' };
    if (this.#policy === 'never') return { kind: 'stop', reason: 'policy never' };
    const clean = exit.code === 0 && exit.signal === null;
    if (this.#policy === 'on-failure' && clean) return { kind: 'stop', reason: 'exited cleanly' };
    if (this.#restartsInARow >= this.#limit.maxRestarts) {
      return { kind: 'failed', reason: `gave up after ${this.#restartsInARow} restarts in a row: ${describeExit(exit)}` };
    }
    this.#restartsInARow += 1;
    const attempt = this.#restartsInARow;
    return { kind: 'restart', delayMs: computeBackoffMs(this.#limit, attempt), attempt };
  }
}

function describeExit(exit: ServiceExit): string {
  if (exit.signal !== null) return `last killed by ${exit.signal}`;
  return `last exit code ${exit.code ?? 'unknown'}`;
}
