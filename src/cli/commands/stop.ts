import { usageError } from '../args.js';
import { defineCommand } from '../command-kit.js';
import { changeStoredServices, findStored, storedServiceInfo } from '../../daemon/offline.js';
import type { ServiceInfo } from '../../supervisor/service-info.js';
import { callDaemon, printJson, queryDaemonIfRunning, stateDir } from '../daemon-client.js';
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
  const services = (await queryDaemonIfRunning('stop', params))?.services ?? (await stopOffline(names, all));
  if (json) printJson({ services });
  else if (services.length === 0) process.stdout.write('no services\n');
  else {
    const colour = useColour(process.stdout);
    for (const service of services) process.stdout.write(`${serviceLine(service, colour)}\n`);
  }
  return 0;
}

/**
 * With no daemon nothing runs, so stopping is only making sure the next
 * daemon does not start these again. Unknown names are refused without
 * starting a daemon. If a daemon starts meanwhile, it is asked after all.
 */
async function stopOffline(names: readonly string[], all: boolean): Promise<ServiceInfo[]> {
  const dir = stateDir();
  const changed = await changeStoredServices(dir, (store) => {
    const stored = store.load({ moveDamaged: false });
    const chosen = all ? stored : names.map((name) => findStored(stored, name));
    return chosen.map((service) => {
      const stopped = { ...service, wanted: false };
      if (service.wanted) store.save(stopped);
      return storedServiceInfo(stopped, dir);
    });
  });
  return changed ?? (await callDaemon('stop', { names, all, timeoutMs: undefined }, { start: false })).services;
}
