import { TendError } from '../../core/errors.js';
import type { StartReport } from '../../supervisor/service-info.js';
import { usageError } from '../args.js';
import { findStored, readStoredServices } from '../../daemon/offline.js';
import { defineCommand } from '../command-kit.js';
import { callDaemon, definitionForWire, findConfigFile, loadStack, printJson, queryDaemonIfRunning, reportQueued, stateDir, withDependencies } from '../daemon-client.js';
import { serviceLine, useColour } from '../format.js';
import { definitionFlags, definitionFromFlags } from '../service-flags.js';

// The definition flags stay strings here: definitionFromFlags reads them from the raw parse.
const flags = {
  cwd: { kind: 'string', short: 'C' },
  env: { kind: 'list', short: 'e' },
  'inherit-env': { kind: 'optional' },
  log: { kind: 'string' },
  restart: { kind: 'string' },
  'max-restarts': { kind: 'string' },
  backoff: { kind: 'string' },
  'max-backoff': { kind: 'string' },
  port: { kind: 'list', short: 'p' },
  ready: { kind: 'string' },
  'ready-timeout': { kind: 'string' },
  'stop-signal': { kind: 'string' },
  'stop-timeout': { kind: 'string' },
  strategy: { kind: 'string' },
  'limit-exempt': { kind: 'boolean' },
  'no-queue': { kind: 'boolean' },
  'free-port': { kind: 'boolean' },
  force: { kind: 'boolean' },
  file: { kind: 'string', short: 'f' },
} as const;

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

Over the limit (\`tend limit\`) the start waits in a queue and says so on
stderr at once, with its place in line (and again when that changes).
Ctrl-C while it still waits (in the queue, or for what it depends on)
withdraws it: the service ends stopped ("withdrawn: the client went away")
and does not start later. Once its process was spawned, Ctrl-C only ends
this command: the service runs on as a started service. A start that
another client also asked for is withdrawn only when both have gone.

Exit status: 0 started (or already running), 1 it could not start or get
ready, 2 bad usage or an invalid definition.

Examples:
  tend start web --port 3000 --ready tcp:3000 -- node server.js
  tend start worker --restart always --inherit-env=PATH,HOME -- npm run worker
  tend start db -f stack.yaml`;

export function printStartReport(report: StartReport, json: boolean): void {
  if (json) return printJson(report);
  const colour = useColour(process.stdout);
  for (const freed of report.freed) {
    process.stdout.write(`freed port ${freed.port}: stopped pid ${freed.pid} (${freed.command ?? '?'})${freed.tend ? ", tend's" : ', not tend\'s'}\n`);
  }
  process.stdout.write(`${report.already_running ? 'already running: ' : ''}${serviceLine(report.service, colour)}\n`);
}

interface StartOptions {
  readonly queue: boolean;
  readonly freePort: boolean;
  readonly force: boolean;
}

export const { run } = defineCommand({
  name: 'start',
  help,
  flags,
  positionals: [{ name: 'NAME', service: true }],
  json: true,
  command: 'optional',
  run: async ({ args, flags: f, json, command, parsed }) => {
    const name = args.NAME;
    const options: StartOptions = { queue: !f['no-queue'], freePort: f['free-port'], force: f.force };
    if (options.force && !options.freePort) throw usageError('tend start: --force only works with --free-port', 'Add --free-port to stop whoever holds a declared port.');
    if (command !== undefined) {
      if (f.file !== undefined) throw usageError('tend start: give either a command after -- or -f FILE, not both');
      const definition = definitionFromFlags(name, command, parsed);
      const report = await callDaemon('define', { definition: definitionForWire(definition), ...options }, { start: true, onProgress: reportQueued() });
      printStartReport(report, json);
      return 0;
    }
    const given = definitionFlags.filter((flag) => parsed.flags[flag] !== undefined);
    if (given.length > 0) throw usageError(`tend start: --${given[0] as string} defines a service, but no command was given after --`, `To change ${name}, give its whole definition: tend start ${name} [options] -- CMD [ARGS...]`);
    printStartReport(await startDefined(name, f.file, options), json);
    return 0;
  },
});

/** Starts `name` as the daemon knows it, or as a config file defines it, with what it depends on. */
async function startDefined(name: string, file: string | undefined, options: StartOptions): Promise<StartReport> {
  const configFile = findConfigFile(file);
  if (configFile !== undefined) {
    const stack = await loadStack(configFile);
    if (stack.services.some((s) => s.name === name)) {
      for (const definition of withDependencies(stack, name)) {
        await callDaemon('define', { definition: definitionForWire(definition), start: false }, { start: true });
      }
      const report = await callDaemon('start', { name, ...options }, { start: true, onProgress: reportQueued() });
      return report;
    }
    if (file !== undefined) throw new TendError('SERVICE_UNKNOWN', { name, known: stack.services.map((s) => s.name).join(', ') });
  }
  const onProgress = reportQueued();
  const running = await queryDaemonIfRunning('start', { name, ...options }, onProgress);
  if (running) return running;
  // A name nobody defined is refused before a daemon is started for it.
  findStored(readStoredServices(stateDir(), () => undefined), name);
  return callDaemon('start', { name, ...options }, { start: true, onProgress });
}
