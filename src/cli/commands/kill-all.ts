import { defineCommand } from '../command-kit.js';
import { printJson, queryDaemonIfRunning } from '../daemon-client.js';

export const help = `Usage: tend kill-all [--json]

Emergency stop: every service's whole tree is killed now (SIGKILL, no grace
period), starts waiting in the queue are refused, and every service is marked
stopped. Reports how many processes were killed and their pids. The daemon
keeps running.

Options:
      --json   print one JSON document: killed_count, killed_pids, services, dequeued
  -h, --help   show this help`;

export const { run } = defineCommand({
  name: 'kill-all',
  help,
  flags: {},
  positionals: [],
  json: true,
  run: killAll,
});

async function killAll({ json }: { json: boolean }): Promise<number> {
  const report = (await queryDaemonIfRunning('killAll', {})) ?? { killed_count: 0, killed_pids: [], services: [], dequeued: 0 };
  if (json) printJson(report);
  else process.stdout.write(`killed ${report.killed_count} process(es)${report.killed_pids.length > 0 ? `: ${report.killed_pids.join(' ')}` : ''}${report.services.length > 0 ? ` (services ${report.services.join(', ')})` : ''}${report.dequeued > 0 ? `; ${report.dequeued} queued start(s) refused` : ''}\n`);
  return 0;
}
