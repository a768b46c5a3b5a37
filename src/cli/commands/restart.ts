import { defineCommand } from '../command-kit.js';
import { callDaemon, reportQueued } from '../daemon-client.js';
import { printStartReport } from './start.js';

export const help = `Usage: tend restart NAME [--timeout DUR] [--json]

Stops the service's whole tree (as \`tend stop\` does) and starts it again
with the same definition; returns once it runs (and is ready). Its count of
restarts in a row starts over. Over the limit the start waits in the queue
and says so on stderr; Ctrl-C while it waits withdraws it (the service
stays stopped).

Options:
      --timeout DUR   grace before SIGKILL when stopping (default: the service's stop timeout)
      --no-queue      over the limit, fail at once instead of waiting
      --json          print one JSON document
  -h, --help          show this help`;

export const { run } = defineCommand({
  name: 'restart',
  help,
  flags: { timeout: { kind: 'duration', short: 't' }, 'no-queue': { kind: 'boolean' } },
  positionals: [{ name: 'NAME', service: true }],
  json: true,
  run: async ({ args, flags, json, parsed }) => {
    const name = args.NAME;
    const timeoutMs = flags.timeout;
    const report = await callDaemon('restart', { name, timeoutMs, queue: parsed.flags['no-queue'] !== true }, { start: true, onProgress: reportQueued() });
    printStartReport(report, json);
    return 0;
  },
});
