import type { ServiceInfo } from '../../supervisor/service-info.js';
import { parseArgs, parseDuration, usageError } from '../args.js';
import { callDaemon, printJson, queryDaemonIfRunning } from '../daemon-client.js';
import { serviceLine, useColour } from '../format.js';
import { checkName } from './start.js';

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

export async function run(argv: string[]): Promise<number> {
  const parsed = parseArgs(
    argv,
    [
      { name: 'all', kind: 'boolean' },
      { name: 'timeout', kind: 'string', short: 't' },
      { name: 'json', kind: 'boolean' },
      { name: 'help', kind: 'boolean', short: 'h' },
    ],
    'stop',
  );
  if (parsed.flags.help) {
    process.stdout.write(`${help}\n`);
    return 0;
  }
  if (parsed.rest) throw usageError('tend stop: unexpected --');
  const all = parsed.flags.all === true;
  if (all && parsed.positionals.length > 0) throw usageError('tend stop: give service names or --all, not both');
  if (!all && parsed.positionals.length === 0) throw usageError('tend stop: no service named', 'Usage: tend stop NAME... | --all');
  const names = parsed.positionals.map((n) => checkName(n, 'stop'));
  const timeoutMs = typeof parsed.flags.timeout === 'string' ? parseDuration(parsed.flags.timeout, 'timeout') : undefined;
  const params = { names, all, timeoutMs };
  // Nothing runs without a daemon: --all has nothing to do then; names must still be known, so ask one.
  const result = (all ? await queryDaemonIfRunning('stop', params) : await callDaemon('stop', params, { start: true })) as { services: ServiceInfo[] } | undefined;
  const services = result?.services ?? [];
  if (parsed.flags.json) printJson({ services });
  else if (services.length === 0) process.stdout.write('no services\n');
  else {
    const colour = useColour(process.stdout);
    for (const service of services) process.stdout.write(`${serviceLine(service, colour)}\n`);
  }
  return 0;
}
