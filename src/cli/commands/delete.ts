import { defineCommand } from '../command-kit.js';
import { changeStoredServices, findStored, storedServiceInfo } from '../../daemon/offline.js';
import type { ServiceInfo } from '../../supervisor/service-info.js';
import { callDaemon, printJson, queryDaemonIfRunning, stateDir } from '../daemon-client.js';

export const help = `Usage: tend delete NAME [--timeout DUR] [--json]

Stops the service (its whole tree) and forgets its definition. Its log files
are kept.

Options:
      --timeout DUR   grace before SIGKILL (default: the service's stop timeout)
      --json          print one JSON document
  -h, --help          show this help`;

export const { run } = defineCommand({
  name: 'delete',
  help,
  flags: { timeout: { kind: 'duration', short: 't' } },
  positionals: [{ name: 'NAME', service: true }],
  json: true,
  run: ({ args, flags, json }) => remove(args.NAME, flags.timeout, json),
});

async function remove(name: string, timeoutMs: number | undefined, json: boolean): Promise<number> {
  const service = (await queryDaemonIfRunning('delete', { name, timeoutMs })) ?? (await deleteOffline(name, timeoutMs));
  if (json) printJson({ deleted: service });
  else process.stdout.write(`deleted ${name}${service.log ? ` (its log stays at ${service.log})` : ''}\n`);
  return 0;
}

/** With no daemon nothing runs: forget the stored definition, under the daemon's lock; an unknown name starts no daemon. */
async function deleteOffline(name: string, timeoutMs: number | undefined): Promise<ServiceInfo> {
  const dir = stateDir();
  const deleted = await changeStoredServices(dir, (store) => {
    const info = storedServiceInfo(findStored(store.load({ moveDamaged: false }), name), dir);
    store.remove(name);
    return info;
  });
  return deleted ?? (await callDaemon('delete', { name, timeoutMs }, { start: false }));
}
