import { defineCommand } from '../command-kit.js';
import { printJson, queryDaemonIfRunning, stateDir } from '../daemon-client.js';
import { servicesTable, useColour } from '../format.js';

export const help = `Usage: tend ps [--json]

Lists the daemon's services: name, state, pid, uptime, restarts, CPU (of the
whole tree, since the last look), memory (resident, whole tree) and ports.
Does not start the daemon: with none running, no service runs.

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
  const result = await queryDaemonIfRunning('ps', {});
  if (json) {
    printJson({ daemon: result !== undefined, state_dir: stateDir(), services: result?.services ?? [], limit: result?.limit ?? null });
    return 0;
  }
  if (!result) process.stdout.write('the tend daemon is not running: no services run (`tend start` starts it)\n');
  else if (result.services.length === 0) process.stdout.write('no services defined (define one with `tend start NAME -- CMD`)\n');
  else process.stdout.write(`${servicesTable(result.services, useColour(process.stdout))}\n`);
  return 0;
}
