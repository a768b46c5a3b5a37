// Waiting for conditions and events with deadlines: no test sleeps a fixed time.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';

export const DEFAULT_DEADLINE_MS = 10_000;

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  readonly timeoutMs?: number;
  /** What is awaited, for the error at the deadline ("2 sleeps of handle x"). */
  readonly what: string;
  /** Extra detail for the error at the deadline (current state, output seen). */
  readonly detail?: () => string;
}

export interface PollOptions extends WaitOptions {
  /**
   * Count a predicate that throws as "not yet" (a daemon that is still
   * starting refuses connections); the last error is named at the deadline.
   */
  readonly retryOnError?: boolean;
}

/**
 * Polls `predicate` with a backoff (2 ms up to 100 ms) until it returns a
 * truthy value, which is returned; at the deadline, throws an error that says
 * what was awaited and for how long. Only for conditions with no event to
 * await (the contents of /proc, a file growing).
 */
export async function waitFor<T>(predicate: () => T | Promise<T>, options: PollOptions): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DEADLINE_MS;
  const deadline = Date.now() + timeoutMs;
  let interval = 2;
  let lastError: Error | undefined;
  for (;;) {
    let value: T | undefined;
    try {
      value = await predicate();
    } catch (error) {
      if (options.retryOnError !== true) throw error;
      lastError = error instanceof Error ? error : new Error(String(error));
    }
    if (value !== undefined && value !== null && value !== false && value !== 0 && value !== '') return value;
    const left = deadline - Date.now();
    if (left <= 0) {
      const detail = options.detail ? `\n${options.detail()}` : '';
      const last = lastError ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what}${last}${detail}`);
    }
    await delay(Math.min(interval, left));
    interval = Math.min(interval * 2, 100);
  }
}

/**
 * Keeps every line a stream has produced, so that several waits on one stream
 * see the whole output, whatever chunks it arrived in.
 */
class LineLog {
  readonly lines: string[] = [];
  ended = false;
  #pending = '';
  readonly #waiters = new Set<() => void>();

  constructor(stream: Readable) {
    stream.on('data', (chunk: Buffer | string) => {
      this.#pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      const lines = this.#pending.split('\n');
      this.#pending = lines.pop() ?? '';
      this.lines.push(...lines);
      this.#wake();
    });
    const onEnd = (): void => {
      if (this.#pending !== '') this.lines.push(this.#pending);
      this.#pending = '';
      this.ended = true;
      this.#wake();
    };
    stream.once('end', onEnd);
    stream.once('close', onEnd);
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  find(pattern: RegExp): RegExpMatchArray | undefined {
    for (const line of this.lines) {
      const match = pattern.exec(line);
      if (match) return match;
    }
    return undefined;
  }

  /** Calls `check` on every change until it returns true or `abort` fires. */
  watch(check: () => boolean, abort: AbortSignal): void {
    const waiter = (): void => {
      if (check()) this.#waiters.delete(waiter);
    };
    abort.addEventListener('abort', () => this.#waiters.delete(waiter), { once: true });
    this.#waiters.add(waiter);
    waiter();
  }

  get text(): string {
    return this.lines.join('\n') + (this.#pending ? `\n${this.#pending}` : '');
  }
}

const logs = new WeakMap<Readable, LineLog>();

function lineLogOf(stream: Readable): LineLog {
  let log = logs.get(stream);
  if (!log) {
    log = new LineLog(stream);
    logs.set(stream, log);
  }
  return log;
}

/** Everything a stream has produced so far (once any wait has started reading it). */
export function outputOf(stream: Readable): string {
  return lineLogOf(stream).text;
}

/**
 * Resolves with the first match of `pattern` among a stream's lines, including
 * lines that arrived before this call (once a wait has started reading the
 * stream); rejects at the deadline or when the stream ends without a match.
 */
export function waitForLineInStream(stream: Readable, pattern: RegExp, options: WaitOptions): Promise<RegExpMatchArray> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DEADLINE_MS;
  const log = lineLogOf(stream);
  return new Promise((resolve, reject) => {
    const stop = new AbortController();
    const timer = setTimeout(() => {
      stop.abort();
      const detail = options.detail ? `\n${options.detail()}` : '';
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${options.what} (${pattern}); the output was:\n${log.text || '(nothing)'}${detail}`));
    }, timeoutMs);
    log.watch(() => {
      const match = log.find(pattern);
      if (match) {
        clearTimeout(timer);
        stop.abort();
        resolve(match);
        return true;
      }
      if (log.ended) {
        clearTimeout(timer);
        stop.abort();
        const detail = options.detail ? `\n${options.detail()}` : '';
        reject(new Error(`the output ended before ${options.what} (${pattern}); it was:\n${log.text || '(nothing)'}${detail}`));
        return true;
      }
      return false;
    }, stop.signal);
  });
}

/** Resolves with the first match of `pattern` in a file's lines once it appears; the file may not exist yet. */
export async function waitForLineInFile(path: string, pattern: RegExp, options: WaitOptions): Promise<RegExpMatchArray> {
  let text = '';
  return waitFor(
    () => {
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        return undefined;
      }
      for (const line of text.split('\n')) {
        const match = pattern.exec(line);
        if (match) return match;
      }
      return undefined;
    },
    { ...options, what: `${options.what} (${pattern}) in ${path}`, detail: () => `the file held:\n${text || '(nothing)'}${options.detail ? `\n${options.detail()}` : ''}` },
  );
}

/** A line matching `pattern` in a stream or (given a path) a file. */
export function waitForLine(source: Readable | string, pattern: RegExp, options: WaitOptions): Promise<RegExpMatchArray> {
  return typeof source === 'string' ? waitForLineInFile(source, pattern, options) : waitForLineInStream(source, pattern, options);
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Resolves with a child's exit status once it has exited (at once if it already has); rejects at the deadline. */
export async function waitForExit(child: ChildProcess, options: WaitOptions): Promise<ExitStatus> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  const timeoutMs = options.timeoutMs ?? DEFAULT_DEADLINE_MS;
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      resolve({ code, signal });
    };
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      const detail = options.detail ? `\n${options.detail()}` : '';
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${options.what} (pid ${child.pid}) to exit${detail}`));
    }, timeoutMs);
    child.once('exit', onExit);
  });
}

/** Rejects with a clear error when `promise` does not settle within the deadline. */
export async function withDeadline<T>(promise: Promise<T>, options: WaitOptions): Promise<T> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DEADLINE_MS;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const detail = options.detail ? `\n${options.detail()}` : '';
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${options.what}${detail}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
