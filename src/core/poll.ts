import { setTimeout as delay } from 'node:timers/promises';

/**
 * Resolves once `done()` returns true, checking with a backoff from 1 ms up to
 * `maxIntervalMs`, or as soon as `wake` settles. Only for conditions the kernel
 * offers no event for (a process group emptying has no pidfd in Node); prefer
 * an event wherever one exists.
 */
export async function pollUntil(
  done: () => boolean,
  abort: AbortSignal,
  options: { maxIntervalMs?: number; wake?: Promise<unknown> } = {},
): Promise<void> {
  const max = options.maxIntervalMs ?? 50;
  let interval = 1;
  let woken = false;
  void options.wake?.then(
    () => (woken = true),
    () => (woken = true),
  );
  while (!done()) {
    abort.throwIfAborted();
    const wait = delay(interval, undefined, { signal: abort });
    await (options.wake && !woken ? Promise.race([wait, options.wake.catch(() => undefined)]) : wait);
    interval = Math.min(interval * 2, max);
  }
}

/** Resolves (never rejects) once `abort` fires: for racing a wait against a deadline. */
export function whenAborted(abort: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (abort.aborted) resolve();
    else abort.addEventListener('abort', () => resolve(), { once: true });
  });
}
