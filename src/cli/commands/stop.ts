import { usageError } from '../args.js';
import { defineCommand } from '../command-kit.js';
import { callDaemon, printJson, queryDaemonIfRunning } from '../daemon-client.js';
import { serviceLine, useColour } from '../format.js';

export const help = `Usage: tend stop NAME... [--timeout DUR] [--json]
       tend stop --all [--timeout DUR] [--json]

Stops services: each whole process tree gets its stop signal (SIGTERM unless
the service says otherwise), then SIGKILL after the timeout. Services stay
defined, as stopped; \`tend start NAME\` starts one again. A service others
depend on is stopped after them.

Options:
      --all           every service
      --timeout DUR   grace before SIGKILL, e.g. 500ms, 10s (default: each service's stop timeout, 5s unless set)
      --json          print one JSON document
  -h, --help          show this help`;

export const { run } = defineCommand({
  name: 'stop',
  help,
  flags: { all: { kind: 'boolean' }, timeout: { kind: 'duration', short: 't' } },
  positionals: [{ name: 'NAME', service: true, optional: true, variadic: true }],
  json: true,
  run: ({ args, flags, json }) => stop(args.NAME, flags.all, flags.timeout, json),
});

async function stop(names: readonly string[], all: boolean, timeoutMs: number | undefined, json: boolean): Promise<number> {
  if (all && names.length > 0) throw usageError('tend stop: give service names or --all, not both');
  if (!all && names.length === 0) throw usageError('tend stop: no service named', 'Usage: tend stop NAME... | --all');
  const params = { names, all, timeoutMs };
  // Nothing runs without a daemon: --all has nothing to do then; names must still be known, so ask one.
  const result = all ? await queryDaemonIfRunning('stop', params) : await callDaemon('stop', params, { start: true });
  const services = result?.services ?? [];
  if (json) printJson({ services });
  else if (services.length === 0) process.stdout.write('no services\n');
  else {
    const colour = useColour(process.stdout);
    for (const service of services) process.stdout.write(`${serviceLine(service, colour)}\n`);
  }
  return 0;
}
