/**
 * The order of work on one service: start, stop, restart and delete run one
 * at a time under its lock, and an interrupt (stop, delete, kill-all) drops
 * the work queued before it (a start waiting for the lock, a backoff restart,
 * an unresponsive restart, a restore), so that the latest command wins.
 */
export class ServiceWork {
  #lock: Promise<unknown> = Promise.resolve();
  /** Aborted by the next interrupt: work queued now carries this signal. */
  #epoch = new AbortController();
  #backoff: NodeJS.Timeout | undefined;

  /** Runs `work` once the work before it is done (whether it succeeded or not). */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#lock.then(work, work);
    this.#lock = result.catch(() => undefined);
    return result;
  }

  /** What queued work checks once it gets the lock: aborted when an interrupt came after it was queued. */
  ticket(): AbortSignal {
    return this.#epoch.signal;
  }

  /** Drops queued work: every ticket taken so far is aborted, the backoff timer cancelled. */
  interrupt(): void {
    this.#epoch.abort();
    this.#epoch = new AbortController();
    this.#clearBackoff();
  }

  /** A restart after `delayMs`, unless an interrupt comes first. */
  scheduleRestart(delayMs: number, restart: (ticket: AbortSignal) => void): void {
    this.#clearBackoff();
    const ticket = this.ticket();
    this.#backoff = setTimeout(() => {
      this.#backoff = undefined;
      restart(ticket);
    }, delayMs);
  }

  /** A backoff restart is pending. */
  get backingOff(): boolean {
    return this.#backoff !== undefined;
  }

  #clearBackoff(): void {
    if (this.#backoff) clearTimeout(this.#backoff);
    this.#backoff = undefined;
  }
}
