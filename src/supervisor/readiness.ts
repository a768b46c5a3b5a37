/**
 * Waiting until a started service is ready: a TCP port accepts a connection,
 * an HTTP URL answers 2xx, or a line of its output matches a pattern. Every
 * wait ends at the check's timeout or when the caller aborts, and leaves no
 * socket, timer or listener behind either way.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { describeValue, errnoOf } from '../core/errors.js';
import type { ReadyCheck } from '../service/definition.js';

/**
 * Where the lines of a service's output come from (a log file tail, a pipe):
 * calls `onLine` with each line, without its newline, until the returned
 * function is called. It may replay lines it already holds before returning.
 */
export type LineSource = (onLine: (line: string) => void) => () => void;

export interface WaitUntilReadyOptions {
  /** Abandons the wait: it then rejects with a ReadinessError whose cause is the abort reason. */
  readonly signal: AbortSignal;
  /** Needed by `log` checks. */
  readonly logLines?: LineSource | undefined;
  /** Where `tcp` checks connect; 127.0.0.1 unless given. */
  readonly host?: string | undefined;
  /** Called after each probe that found the service not ready yet, with why (for progress output). */
  readonly onNotReady?: ((detail: string) => void) | undefined;
  /**
   * For `tcp` and local `http` checks: whether a process outside the
   * service's tree listens on the check's port (undefined: none does), asked
   * before each attempt and again (`answered`) after one got an answer; the
   * attempt then counts as not ready, with the reason given. Without it, any
   * answer passes.
   */
  readonly listenerOwner?: ((port: number, answered: boolean) => string | undefined) | undefined;
}

export type ReadinessOutcome = 'timeout' | 'aborted' | 'misconfigured';

/** A readiness check that did not pass: names the check, what happened and the last thing seen. */
export class ReadinessError extends Error {
  override readonly name = 'ReadinessError';

  constructor(
    readonly check: ReadyCheck,
    readonly outcome: ReadinessOutcome,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const DEFAULT_READY_HOST = '127.0.0.1';
const FIRST_RETRY_MS = 10;
const MAX_RETRY_MS = 250;
/** Per connection attempt, so that one dropped SYN does not use up the whole timeout. */
const TCP_ATTEMPT_TIMEOUT_MS = 1000;
/** Per request: a health endpoint may take a moment to answer, but not the whole timeout. */
const HTTP_ATTEMPT_TIMEOUT_MS = 5000;

/** What one probe found: ready, or why not. */
type Probe = { readonly ready: true } | { readonly ready: false; readonly detail: string };

/** What the wait has seen so far, for the error message. */
interface Progress {
  attempts: number;
  last: string | undefined;
}

/** Resolves once `check` passes; rejects with a ReadinessError at `check.timeoutMs` or when `options.signal` aborts. */
export async function waitUntilReady(check: ReadyCheck, options: WaitUntilReadyOptions): Promise<void> {
  const label = describeCheck(check, options.host ?? DEFAULT_READY_HOST);
  if ('log' in check && options.logLines === undefined) {
    throw new ReadinessError(check, 'misconfigured', `Readiness check ${label} cannot run: no source of output lines was given. Give the service a log file or pipe its output.`);
  }
  const startedAt = performance.now();
  const progress: Progress = { attempts: 0, last: undefined };
  const abandoned = (): ReadinessError => {
    const elapsed = Math.round(performance.now() - startedAt);
    const reason = options.signal.reason instanceof Error ? options.signal.reason.message : String(options.signal.reason);
    return new ReadinessError(check, 'aborted', `Readiness check ${label} was abandoned after ${elapsed} ms (${reason})${describeProgress(check, progress)}.`, {
      cause: options.signal.reason,
    });
  };
  if (options.signal.aborted) throw abandoned();

  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), check.timeoutMs);
  const forwardAbort = (): void => deadline.abort();
  options.signal.addEventListener('abort', forwardAbort, { once: true });
  try {
    await runCheck(check, options, deadline.signal, progress);
  } catch (error) {
    if (!deadline.signal.aborted) throw error;
    if (options.signal.aborted) throw abandoned();
    throw new ReadinessError(check, 'timeout', `Readiness check ${label} failed: ${describeFailure(check)} within ${check.timeoutMs} ms${describeProgress(check, progress)}.`);
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener('abort', forwardAbort);
  }
}

function runCheck(check: ReadyCheck, options: WaitUntilReadyOptions, signal: AbortSignal, progress: Progress): Promise<void> {
  if ('log' in check) return waitForLine(new RegExp(check.log), options.logLines as LineSource, signal, progress);
  const probe = 'tcp' in check ? () => probeTcp(options.host ?? DEFAULT_READY_HOST, check.tcp, signal) : () => probeHttp(new URL(check.http), signal);
  const port = 'tcp' in check && options.host !== undefined && !isLocalHost(options.host) ? undefined : readinessPortOf(check);
  const owner = options.listenerOwner;
  if (port === undefined || owner === undefined) return probeUntilReady(probe, signal, progress, options.onNotReady);
  // An answer only says that something listens there: a process that took the port first
  // (or after the port check before start) answers in the service's place while it crash-loops.
  // Asked again after the answer: a holder may have bound the port between the first look and the connection.
  const probeOwned = async (): Promise<Probe> => {
    const before = owner(port, false);
    if (before !== undefined) return { ready: false, detail: before };
    const result = await probe();
    const after = result.ready ? owner(port, true) : undefined;
    return after === undefined ? result : { ready: false, detail: after };
  };
  return probeUntilReady(probeOwned, signal, progress, options.onNotReady);
}

/** Host names that reach this machine's own listeners (URL.hostname writes IPv6 in brackets). */
const LOCAL_HOSTS = new Set(['127.0.0.1', '::1', '[::1]', 'localhost', '0.0.0.0']);

export function isLocalHost(host: string): boolean {
  return LOCAL_HOSTS.has(host.toLowerCase());
}

/**
 * The local port a check connects to: a `tcp` check's port, or an `http`
 * check's URL port (80/443 by default) when its host is local. Undefined for
 * `log` checks and for a URL on another host, whose listener tend cannot see:
 * such a check passes on any answer.
 */
export function readinessPortOf(check: ReadyCheck): number | undefined {
  if ('tcp' in check) return check.tcp;
  if (!('http' in check)) return undefined;
  let url: URL;
  try {
    url = new URL(check.http);
  } catch {
    return undefined;
  }
  if (!isLocalHost(url.hostname)) return undefined;
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

/** Probes until one finds the service ready, waiting 10 ms, then twice as long each time up to 250 ms; rejects once `signal` aborts. */
async function probeUntilReady(
  probe: () => Promise<Probe>,
  signal: AbortSignal,
  progress: Progress,
  onNotReady: ((detail: string) => void) | undefined,
): Promise<void> {
  let interval = FIRST_RETRY_MS;
  for (;;) {
    signal.throwIfAborted();
    const result = await probe();
    // An attempt cut short by the abort says nothing about the service: keep the last real answer for the message.
    signal.throwIfAborted();
    progress.attempts += 1;
    if (result.ready) return;
    progress.last = result.detail;
    onNotReady?.(result.detail);
    await delay(interval, undefined, { signal });
    interval = Math.min(interval * 2, MAX_RETRY_MS);
  }
}

/** One connection attempt; settles only once the socket is closed. */
function probeTcp(host: string, port: number, signal: AbortSignal): Promise<Probe> {
  return new Promise((resolve) => {
    let result: Probe | undefined;
    const socket = connect({ host, port });
    const onAbort = (): void => {
      socket.destroy();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.setTimeout(TCP_ATTEMPT_TIMEOUT_MS, () => {
      result ??= { ready: false, detail: `no answer within ${TCP_ATTEMPT_TIMEOUT_MS} ms` };
      socket.destroy();
    });
    socket.once('connect', () => {
      result ??= { ready: true };
      socket.destroy();
    });
    socket.once('error', (error) => {
      result ??= { ready: false, detail: errnoOf(error) ?? error.message };
    });
    socket.once('close', () => {
      signal.removeEventListener('abort', onAbort);
      resolve(result ?? { ready: false, detail: 'the connection closed before it was made' });
    });
  });
}

/** One GET on its own connection (no keep-alive pool to leave sockets in); settles only once the request is closed. */
function probeHttp(url: URL, signal: AbortSignal): Promise<Probe> {
  return new Promise((resolve) => {
    let result: Probe | undefined;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const onResponse = (response: IncomingMessage): void => {
      const status = response.statusCode ?? 0;
      const text = response.statusMessage ? `${status} ${response.statusMessage}` : String(status);
      result ??= status >= 200 && status < 300 ? { ready: true } : { ready: false, detail: `status ${text}` };
      // The body does not matter; destroying the request below cuts it off, which the response reports as an error.
      response.on('error', () => undefined);
      request.destroy();
    };
    const request: ClientRequest = send(url, { method: 'GET', agent: false, timeout: HTTP_ATTEMPT_TIMEOUT_MS }, onResponse);
    const onAbort = (): void => {
      request.destroy();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    request.once('timeout', () => {
      result ??= { ready: false, detail: `no answer within ${HTTP_ATTEMPT_TIMEOUT_MS} ms` };
      request.destroy();
    });
    request.on('error', (error) => {
      result ??= { ready: false, detail: errnoOf(error) ?? error.message };
    });
    request.once('close', () => {
      signal.removeEventListener('abort', onAbort);
      resolve(result ?? { ready: false, detail: 'the request closed without an answer' });
    });
    request.end();
  });
}

/** Resolves on the first line `pattern` matches; rejects once `signal` aborts. Unsubscribes either way. */
function waitForLine(pattern: RegExp, source: LineSource, signal: AbortSignal, progress: Progress): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let unsubscribe: (() => void) | undefined;
    const settle = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      unsubscribe?.();
      if (error === undefined) resolve();
      else reject(error instanceof Error ? error : new Error(`the line source failed with ${describeValue(error)}`));
    };
    const onAbort = (): void => settle(signal.reason);
    const onLine = (line: string): void => {
      if (settled) return;
      progress.attempts += 1;
      progress.last = line;
      if (pattern.test(line)) settle();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      unsubscribe = source(onLine);
    } catch (error) {
      settle(error);
      return;
    }
    // The source may have replayed a matching line before it returned the way to unsubscribe.
    if (settled) unsubscribe();
  });
}

function describeCheck(check: ReadyCheck, host: string): string {
  if ('tcp' in check) return `tcp ${host}:${check.tcp}`;
  if ('http' in check) return `http ${check.http}`;
  return `log /${check.log}/`;
}

function describeFailure(check: ReadyCheck): string {
  if ('tcp' in check) return 'nothing accepted a connection';
  if ('http' in check) return 'no 2xx answer';
  return 'no line of output matched';
}

function describeProgress(check: ReadyCheck, progress: Progress): string {
  if ('log' in check) {
    if (progress.attempts === 0) return '; no lines were seen';
    return `; ${progress.attempts} line(s) seen, the last ${JSON.stringify(truncate(progress.last ?? '', 200))}`;
  }
  if (progress.attempts === 0) return '; no attempt finished';
  return `; ${progress.attempts} attempt(s), the last: ${progress.last ?? 'ready'}`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
