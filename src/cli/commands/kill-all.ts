import { parseArgs, usageError } from '../args.js';
import { printJson, queryDaemonIfRunning } from '../daemon-client.js';

export const help = `Usage: tend kill-all [--json]

Emergency stop: every service's whole tree is killed now (SIGKILL, no grace
period), starts waiting in the queue are refused, and every service is marked
stopped. Reports how many processes were killed and their pids. The daemon
keeps running.

Options:
      --json   print one JSON document: killed_count, killed_pids, services, dequeued
  -h, --help   show this help`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseArgs(
    argv,
    [
      { name: 'json', kind: 'boolean' },
      { name: 'help', kind: 'boolean', short: 'h' },
    ],
    'kill-all',
  );
  if (parsed.flags.help) {
    process.stdout.write(`${help}\n`);
    return 0;
  }
  if (parsed.positionals.length > 0 || parsed.rest) throw usageError(`tend kill-all: unexpected argument ${JSON.stringify(parsed.positionals[0] ?? '--')}`);
  const report = (await queryDaemonIfRunning('killAll', {})) ?? { killed_count: 0, killed_pids: [], services: [], dequeued: 0 };
  if (parsed.flags.json) printJson(report);
  else process.stdout.write(`killed ${report.killed_count} process(es)${report.killed_pids.length > 0 ? `: ${report.killed_pids.join(' ')}` : ''}${report.services.length > 0 ? ` (services ${report.services.join(', ')})` : ''}${report.dequeued > 0 ? `; ${report.dequeued} queued start(s) refused` : ''}\n`);
  return 0;
}
