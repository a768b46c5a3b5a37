import { resolve } from 'node:path';
import { TendError } from '../../core/errors.js';
import { parseSignal } from '../../core/signals.js';
import { strategyNames, type StrategyChoice } from '../../core/types.js';
import { DEFAULT_STOP_TIMEOUT_MS } from '../../spawn/normalize-spec.js';
import { DEFAULT_READY_TIMEOUT_MS, DEFAULT_RESTART_BACKOFF_MS, DEFAULT_RESTART_MAX_BACKOFF_MS, restartPolicies, type ReadyCheck, type RestartPolicy, type ServiceConfig } from '../../service/definition.js';
import type { StartReport } from '../../supervisor/service-info.js';
import { SERVICE_NAME_PATTERN } from '../../supervisor/service-store.js';
import { parseArgs, parseDuration, parseEnvPairs, usageError, type FlagSpec, type ParsedArgs } from '../args.js';
import { callDaemon, definitionForWire, findConfigFile, loadStack, printJson, withDependencies } from '../daemon-client.js';
import { serviceLine, useColour } from '../format.js';

const flags: FlagSpec[] = [
  { name: 'cwd', kind: 'string', short: 'C' },
  { name: 'env', kind: 'list', short: 'e' },
  { name: 'inherit-env', kind: 'optional' },
  { name: 'log', kind: 'string' },
  { name: 'restart', kind: 'string' },
  { name: 'max-restarts', kind: 'string' },
  { name: 'backoff', kind: 'string' },
  { name: 'max-backoff', kind: 'string' },
  { name: 'port', kind: 'list', short: 'p' },
  { name: 'ready', kind: 'string' },
  { name: 'ready-timeout', kind: 'string' },
  { name: 'stop-signal', kind: 'string' },
  { name: 'stop-timeout', kind: 'string' },
  { name: 'strategy', kind: 'string' },
  { name: 'limit-exempt', kind: 'boolean' },
  { name: 'no-queue', kind: 'boolean' },
  { name: 'free-port', kind: 'boolean' },
  { name: 'force', kind: 'boolean' },
  { name: 'file', kind: 'string', short: 'f' },
  { name: 'json', kind: 'boolean' },
  { name: 'help', kind: 'boolean', short: 'h' },
];

export const help = `Usage: tend start NAME [options] -- CMD [ARGS...]
       tend start NAME [-f FILE] [options]

Starts a named service under the daemon (started if needed) and returns once
it runs, and once its readiness check passes when it has one. With a command,
NAME is defined (or redefined, when stopped) as that command. Without one,
NAME is a service the daemon knows, or one in the config file (-f FILE, else
./tend.yaml, ./tend.yml or ./tend.json) together with what it depends on.

CMD runs without a shell, with exactly the environment given (plus TEND_ID).
Its output goes to $STATE/logs/NAME.log (rotated at 10 MiB, 3 kept) unless
--log says where; read it with \`tend logs NAME\`. Its pid is written to
$STATE/run/NAME.pid while it runs.

Options:
  -C, --cwd DIR              working directory (default: the current one)
  -e, --env NAME=VALUE       set a variable (repeatable)
      --inherit-env[=NAMES]  pass on this shell's whole environment, or the comma-separated NAMES
      --log FILE             write its output to FILE (rotated) instead
      --restart POLICY       never, on-failure (default) or always
      --max-restarts N       give up (state failed) after N restarts in a row (default: never give up)
      --backoff DUR          first restart delay, doubling each time (default 1s)
      --max-backoff DUR      longest restart delay (default 30s)
  -p, --port N               a port it listens on (repeatable): checked free before start
      --ready CHECK          tcp:PORT, http:URL (2xx) or log:REGEX; its port is
                             checked free like --port, and must be the service's
      --ready-timeout DUR    how long readiness may take (default 30s)
      --stop-signal SIG      the graceful stop signal (default SIGTERM)
      --stop-timeout DUR     grace before SIGKILL (default 5s)
      --strategy NAME        auto (default), cgroup, pidns or pgroup
      --limit-exempt         not counted against \`tend limit\`
      --no-queue             over the limit, fail at once instead of waiting
      --free-port            stop a holder of a needed port if it is tend's
      --force                with --free-port, stop any holder (says what it killed)
  -f, --file FILE            the config file to take NAME from
      --json                 print one JSON document
  -h, --help                 show this help

Exit status: 0 started (or already running), 1 it could not start or get
ready, 2 bad usage or an invalid definition.

Examples:
  tend start web --port 3000 --ready tcp:3000 -- node server.js
  tend start worker --restart always --inherit-env=PATH,HOME -- npm run worker
  tend start db -f stack.yaml`;

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

const definitionFlags = ['cwd', 'env', 'inherit-env', 'log', 'restart', 'max-restarts', 'backoff', 'max-backoff', 'port', 'ready', 'ready-timeout', 'stop-signal', 'stop-timeout', 'strategy', 'limit-exempt'];

export function checkName(name: string | undefined, command: string): string {
  if (name === undefined) throw usageError(`tend ${command}: no service name given`, `Usage: tend ${command} NAME ...`);
  if (!SERVICE_NAME_PATTERN.test(name)) throw usageError(`tend ${command}: invalid service name ${JSON.stringify(name)}`, 'Use 1-64 letters, digits, ".", "_", "-" or "@".');
  return name;
}

export function printStartReport(report: StartReport, json: boolean): void {
  if (json) return printJson(report);
  const colour = useColour(process.stdout);
  for (const freed of report.freed) {
    process.stdout.write(`freed port ${freed.port}: stopped pid ${freed.pid} (${freed.command ?? '?'})${freed.tend ? ", tend's" : ', not tend\'s'}\n`);
  }
  process.stdout.write(`${report.alreadyRunning ? 'already running: ' : ''}${serviceLine(report.service, colour)}\n`);
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv, flags, 'start');
  if (parsed.flags.help) {
    process.stdout.write(`${help}\n`);
    return 0;
  }
  const [rawName, extra] = parsed.positionals;
  const name = checkName(rawName, 'start');
  if (extra !== undefined) throw usageError(`tend start: unexpected ${JSON.stringify(extra)}`, 'Put the command after --: tend start NAME [options] -- CMD [ARGS...]');
  const options = { queue: parsed.flags['no-queue'] !== true, freePort: parsed.flags['free-port'] === true, force: parsed.flags.force === true };
  if (options.force && !options.freePort) throw usageError('tend start: --force only works with --free-port', 'Add --free-port to stop whoever holds a declared port.');
  const json = parsed.flags.json === true;

  if (parsed.rest !== undefined) {
    if (parsed.flags.file !== undefined) throw usageError('tend start: give either a command after -- or -f FILE, not both');
    const definition = definitionFromFlags(name, parsed.rest, parsed);
    const report = (await callDaemon('define', { definition: definitionForWire(definition), ...options }, { start: true })) as StartReport;
    printStartReport(report, json);
    return 0;
  }
  const given = definitionFlags.filter((f) => parsed.flags[f] !== undefined);
  if (given.length > 0) throw usageError(`tend start: --${given[0] as string} defines a service, but no command was given after --`, `To change ${name}, give its whole definition: tend start ${name} [options] -- CMD [ARGS...]`);

  // Named in a config file: define it with its dependencies, then start it.
  const configFile = findConfigFile(parsed.flags.file as string | undefined);
  if (configFile !== undefined) {
    const stack = await loadStack(configFile);
    if (stack.services.some((s) => s.name === name)) {
      for (const definition of withDependencies(stack, name)) {
        await callDaemon('define', { definition: definitionForWire(definition), start: false }, { start: true });
      }
      const report = (await callDaemon('start', { name, ...options }, { start: true })) as StartReport;
      printStartReport(report, json);
      return 0;
    }
    if (parsed.flags.file !== undefined) throw new TendError('SERVICE_UNKNOWN', { name, known: stack.services.map((s) => s.name).join(', ') });
  }
  const report = (await callDaemon('start', { name, ...options }, { start: true })) as StartReport;
  printStartReport(report, json);
  return 0;
}
