import { readStoredServices, storedServiceInfo } from '../../daemon/offline.js';
import { defineCommand } from '../command-kit.js';
import { printJson, queryDaemonIfRunning, stateDir } from '../daemon-client.js';
import { servicesTable, useColour } from '../format.js';

export const help = `Usage: tend ps [--json]

Lists the daemon's services: name, state, pid, uptime, restarts, CPU (of the
whole tree, since the last look), memory (resident, whole tree) and ports.
Does not start the daemon: with none running, nothing runs, and ps lists the
defined services as they ended, and which of them the next daemon starts
again (\`tend daemon start\`).

States: queued (waiting under the limit), starting (not ready yet), running,
backoff (waiting to restart), stopping, stopped, exited (ended; its policy
does not restart it), failed (see \`tend status NAME\` for why).

Options:
      --json   print one JSON document: { daemon, state_dir, services: [...], limit }
  -h, --help   show this help`;

export const { run } = defineCommand({
  name: 'ps',
  help,
  flags: {},
  positionals: [],
  json: true,
  run: ps,
});

async function ps({ json }: { json: boolean }): Promise<number> {
  const dir = stateDir();
  const result = await queryDaemonIfRunning('ps', {});
  const services = result?.services ?? readStoredServices(dir, warn).map((s) => storedServiceInfo(s, dir));
  if (json) {
    printJson({ daemon: result !== undefined, state_dir: dir, services, limit: result?.limit ?? null });
    return 0;
  }
  if (!result) {
    const wanted = services.filter((s) => s.wanted).map((s) => s.name);
    const next = wanted.length === 0 ? '' : `; the next daemon starts ${wanted.join(', ')} again (\`tend daemon start\`)`;
    process.stdout.write(`the tend daemon is not running (${dir}): nothing runs${next}\n`);
  }
  if (services.length === 0) process.stdout.write('no services defined (define one with `tend start NAME -- CMD`)\n');
  else process.stdout.write(`${servicesTable(services, useColour(process.stdout))}\n`);
  return 0;
}

function warn(message: string): void {
  process.stderr.write(`tend: warning: ${message}\n`);
}
