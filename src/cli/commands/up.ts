import { openSupervisor } from '../../daemon/open-supervisor.js';
import type { ServiceConfig } from '../../service/definition.js';
import type { ServiceState } from '../../supervisor/service-info.js';
import { usageError } from '../args.js';
import { defineCommand } from '../command-kit.js';
import { callDaemon, definitionForWire, loadStack, printJson, reportQueued } from '../daemon-client.js';
import { inCliTerms, paint, serviceLine, useColour, type Colour } from '../format.js';

export const help = `Usage: tend up [-f FILE] [-d] [--json]

Runs every service of a config file (-f FILE, else ./tend.yaml, ./tend.yml or
./tend.json). A service starts once the services in its depends_on are
running and ready.

In the foreground (default) the output of every service is shown, each line
prefixed with its name (coloured on a terminal). Ctrl-C stops everything,
dependents first, and leaves nothing running; a second Ctrl-C kills at once.
tend up also returns when every service has ended on its own: 0 if all
exited cleanly, 1 otherwise.

With -d the services are handed to the daemon (started if needed) and tend
returns once they run; manage them with tend ps, logs, stop. A service that
waits in the queue (over \`tend limit\`) says so on stderr; Ctrl-C then
withdraws the services still waiting, and those already started run on.

Config file:
  services:
    db:
      command: [postgres, -D, ./data]
      ready: { tcp: 5432, timeout: 30s }
    web:
      command: node
      args: [server.js]
      cwd: ./web                     # relative to the file
      env: { PORT: "3000" }
      env_file: .env
      inherit_env: [PATH, HOME]      # or true; nothing is inherited by default
      ports: [3000]                  # checked free before start
      ready: { http: "http://127.0.0.1:3000/health" }   # or tcp: PORT, log: REGEX
      depends_on: [db]
      restart: on-failure            # never | on-failure | always
      restart_limit: { max: 5, backoff: 1s, max_backoff: 30s }
      stop_signal: SIGTERM
      stop_timeout: 10s
      log: ./logs/web.log            # default: the state directory's logs/
      limit_exempt: false
      unresponsive: { cpu_window: 30s, probe_interval: 10s, probe_failures: 3, restart: true }

Options:
  -f, --file FILE   the config file
  -d, --detach      hand the services to the daemon and return
      --json        with -d, print one JSON document
  -h, --help        show this help`;

const palette: Colour[] = ['cyan', 'magenta', 'yellow', 'blue', 'green'];
const activeStates: ReadonlySet<ServiceState> = new Set(['queued', 'starting', 'running', 'backoff', 'stopping']);

async function detached(services: readonly ServiceConfig[], json: boolean): Promise<number> {
  const result = await callDaemon('up', { definitions: services.map(definitionForWire) }, { start: true, onProgress: reportQueued() });
  if (json) printJson(result);
  else {
    const colour = useColour(process.stdout);
    for (const service of result.services) process.stdout.write(`${serviceLine(service, colour)}\n`);
    for (const error of result.errors) process.stderr.write(`tend: ${error.name}: ${error.code}: ${inCliTerms(error.message)}\n`);
  }
  return result.errors.length === 0 ? 0 : 1;
}

async function foreground(services: readonly ServiceConfig[]): Promise<number> {
  const out = process.stdout;
  const colour = useColour(out);
  const width = Math.max(4, ...services.map((s) => s.name.length));
  const prefixes = new Map(services.map((s, i) => [s.name, paint(s.name.padEnd(width), palette[i % palette.length] as Colour, colour)]));
  const tendPrefix = paint('tend'.padEnd(width), 'grey', colour);
  const say = (line: string): void => void out.write(`${tendPrefix} | ${line}\n`);

  const opened = await openSupervisor({
    onOutput: (name, line) => void out.write(`${prefixes.get(name) ?? name} | ${line}\n`),
    maxConcurrent: Math.max(1, services.filter((s) => !s.exemptFromLimit).length),
    warn: (message) => say(`warning: ${message}`),
  });
  const supervisor = opened.supervisor;
  let settle!: (why: string) => void;
  const finished = new Promise<string>((resolve) => (settle = resolve));
  // Until every start was issued, "nothing active" only means "not started yet".
  let launched = false;
  const settleIfAllEnded = (): void => {
    if (launched && supervisor.names().every((name) => !activeStates.has(supervisor.stateOf(name)))) settle('all ended');
  };
  supervisor.on('state', (name, state) => {
    if (!launched || state === 'queued') return;
    say(serviceLine(supervisor.info(name), colour));
    settleIfAllEnded();
  });
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts === 1) {
      say(`${signal}: stopping every service (Ctrl-C again to kill at once)`);
      settle(signal);
    } else {
      say('killing every service');
      void supervisor.killAll();
    }
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
  try {
    for (const service of services) supervisor.define(service);
    launched = true;
    for (const service of services) {
      supervisor.start(service.name).catch((error: unknown) => {
        say(`${service.name}: ${(error as { code?: string }).code ?? 'error'}: ${inCliTerms((error as Error).message)}`);
        settleIfAllEnded();
      });
    }
    const why = await finished;
    const before = supervisor.list();
    await opened.close({ forget: true });
    say(`stopped (${why})`);
    if (why !== 'all ended') return 0;
    return before.every((s) => s.state === 'stopped' || (s.state === 'exited' && s.last_exit?.code === 0)) ? 0 : 1;
  } finally {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(signal, onSignal);
  }
}

export const { run } = defineCommand({
  name: 'up',
  help,
  flags: { file: { kind: 'string', short: 'f' }, detach: { kind: 'boolean', short: 'd' } },
  positionals: [],
  json: true,
  run: async ({ flags, json }) => {
    if (json && !flags.detach) throw usageError('tend up: --json needs -d (in the foreground, tend up prints the services\' output)');
    const stack = await loadStack(flags.file);
    return flags.detach ? detached(stack.services, json) : foreground(stack.services);
  },
});
