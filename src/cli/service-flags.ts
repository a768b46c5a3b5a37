/**
 * The service definition that \`tend start NAME [options] -- CMD\` gives on its
 * command line, read from the parsed flags.
 */
import { resolve } from 'node:path';
import { parseSignal } from '../core/signals.js';
import { strategyNames, type StrategyChoice } from '../core/types.js';
import { DEFAULT_STOP_TIMEOUT_MS } from '../spawn/normalize-spec.js';
import { DEFAULT_READY_TIMEOUT_MS, DEFAULT_RESTART_BACKOFF_MS, DEFAULT_RESTART_MAX_BACKOFF_MS, restartPolicies, type ReadyCheck, type RestartPolicy, type ServiceConfig } from '../service/definition.js';
import { parseDuration, parseEnvPairs, usageError, type ParsedArgs } from './args.js';

function parseReady(text: string, timeoutMs: number): ReadyCheck {
  const colon = text.indexOf(':');
  const kind = colon < 0 ? text : text.slice(0, colon);
  const value = colon < 0 ? '' : text.slice(colon + 1);
  if (kind === 'tcp') return { tcp: parsePort(value, 'ready'), timeoutMs };
  if (kind === 'http' || kind === 'https') {
    let url: URL | undefined;
    try {
      url = new URL(kind === 'http' && !/^https?:\/\//.test(value) ? `http:${value}` : kind === 'https' ? `https:${value}` : value);
    } catch {
      url = undefined;
    }
    if (!url || !/^https?:$/.test(url.protocol)) throw usageError(`tend start: invalid --ready ${JSON.stringify(text)}: not an http(s) URL`, 'Write e.g. --ready http://127.0.0.1:3000/health');
    return { http: url.href, timeoutMs };
  }
  if (kind === 'log') {
    try {
      new RegExp(value);
    } catch (error) {
      throw usageError(`tend start: invalid --ready ${JSON.stringify(text)}: ${(error as Error).message}`);
    }
    if (value === '') throw usageError('tend start: --ready log: needs a pattern', 'Write e.g. --ready "log:listening on"');
    return { log: value, timeoutMs };
  }
  throw usageError(`tend start: invalid --ready ${JSON.stringify(text)}`, 'Write tcp:PORT, http://HOST:PORT/PATH or log:REGEX.');
}

function parsePort(text: string, flag: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw usageError(`tend start: invalid --${flag} ${JSON.stringify(text)}: expected a port from 1 to 65535`);
  return port;
}

function parseCount(text: string, flag: string): number {
  if (!/^\d+$/.test(text)) throw usageError(`tend start: invalid --${flag} ${JSON.stringify(text)}: expected a whole number`);
  return Number(text);
}

/** The definition the command line gives, checked as the config file's are. */
export function definitionFromFlags(name: string, command: readonly string[], parsed: ParsedArgs): ServiceConfig {
  const f = parsed.flags;
  const restart = (f.restart as string | undefined) ?? 'on-failure';
  if (!restartPolicies.includes(restart as RestartPolicy)) throw usageError(`tend start: invalid --restart ${JSON.stringify(restart)}`, 'Use never, on-failure or always.');
  const strategy = (f.strategy as string | undefined) ?? 'auto';
  if (strategy !== 'auto' && !strategyNames.includes(strategy as never)) throw usageError(`tend start: invalid --strategy ${JSON.stringify(strategy)}`, 'Use auto, cgroup, pidns or pgroup.');
  const stopSignal = parseSignal((f['stop-signal']) ?? 'SIGTERM');
  if (stopSignal === undefined) throw usageError(`tend start: unknown --stop-signal ${JSON.stringify(f['stop-signal'])}`, 'Use a name such as SIGTERM, SIGINT or SIGHUP.');
  const duration = (flag: string, fallback: number): number => (typeof f[flag] === 'string' ? parseDuration(f[flag], flag) : fallback);
  const backoffMs = duration('backoff', DEFAULT_RESTART_BACKOFF_MS);
  const maxBackoffMs = duration('max-backoff', Math.max(DEFAULT_RESTART_MAX_BACKOFF_MS, backoffMs));
  if (maxBackoffMs < backoffMs) throw usageError('tend start: --max-backoff is shorter than --backoff');
  const maxRestarts = typeof f['max-restarts'] === 'string' ? parseCount(f['max-restarts'], 'max-restarts') : undefined;
  const customLimit = maxRestarts !== undefined || f.backoff !== undefined || f['max-backoff'] !== undefined;
  const inherit = f['inherit-env'];
  const readyTimeout = duration('ready-timeout', DEFAULT_READY_TIMEOUT_MS);
  const [program, ...args] = command;
  if (program === undefined || program.trim() === '') throw usageError('tend start: the command after -- is empty');
  return {
    name,
    command: program,
    args,
    cwd: resolve((f.cwd as string | undefined) ?? '.'),
    env: parseEnvPairs((f.env as string[] | undefined) ?? [], 'env'),
    inheritEnv: typeof inherit === 'string' ? inherit.split(',').filter(Boolean) : inherit === true,
    log: typeof f.log === 'string' ? resolve(f.log) : undefined,
    restart: restart as RestartPolicy,
    restartLimit: customLimit ? { maxRestarts: maxRestarts ?? Number.POSITIVE_INFINITY, backoffMs, maxBackoffMs } : undefined,
    ready: typeof f.ready === 'string' ? parseReady(f.ready, readyTimeout) : undefined,
    ports: ((f.port as string[] | undefined) ?? []).map((p) => parsePort(p, 'port')),
    dependsOn: [],
    stopSignal,
    stopTimeoutMs: duration('stop-timeout', DEFAULT_STOP_TIMEOUT_MS),
    strategy: strategy as StrategyChoice,
    exemptFromLimit: f['limit-exempt'] === true,
    unresponsive: undefined,
  };
}

/** The flags that make up a definition: with none of them, `tend start NAME` starts what is defined. */
export const definitionFlags = ['cwd', 'env', 'inherit-env', 'log', 'restart', 'max-restarts', 'backoff', 'max-backoff', 'port', 'ready', 'ready-timeout', 'stop-signal', 'stop-timeout', 'strategy', 'limit-exempt'];
