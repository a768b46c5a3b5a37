import { usageError } from '../args.js';
import { defineCommand } from '../command-kit.js';
import { callDaemon, printJson, queryDaemonIfRunning } from '../daemon-client.js';

export const help = `Usage: tend limit [N] [--json]

Shows, or sets to N, the most services that may run at once. A start over the
limit waits in a queue (first come, first served), or fails at once with
--no-queue. Services started with --limit-exempt (limit_exempt: true) neither
count nor wait. Lowering the limit stops nothing; it only makes new starts
wait. The limit is kept in the state directory (default 16).

Options:
      --json   print one JSON document: active_processes, max_allowed,
               utilization_percent, can_start_new, active_pids, starting
               (slots taken by starts not spawned yet: active_processes is
               always active_pids' length plus starting), queued
               (and old_limit, new_limit when it was changed)
  -h, --help   show this help`;

export const { run } = defineCommand({
  name: 'limit',
  help,
  flags: {},
  positionals: [{ name: 'N', optional: true }],
  json: true,
  run: ({ args, json }) => limit(args.N, json),
});

async function limit(text: string | undefined, json: boolean): Promise<number> {
  if (text !== undefined && !/^[1-9]\d{0,8}$/.test(text)) throw usageError(`tend limit: invalid limit ${JSON.stringify(text)}: expected a whole number from 1`);
  const status = text === undefined ? await queryDaemonIfRunning('limit', {}) : await callDaemon('limit', { max: Number(text) }, { start: true });
  if (json) {
    printJson(status ?? { daemon: false });
    return 0;
  }
  if (!status) {
    process.stdout.write('the tend daemon is not running: nothing is counted (`tend limit N` starts it and sets the limit)\n');
    return 0;
  }
  if (status.old_limit !== undefined) process.stdout.write(`limit changed: ${status.old_limit} -> ${status.new_limit}\n`);
  process.stdout.write(
    `${status.active_processes}/${status.max_allowed} running (${status.utilization_percent}%)${status.starting > 0 ? `, ${status.starting} of them starting` : ''}, ${status.queued} queued; ${status.can_start_new ? 'a new start may run now' : 'a new start would wait'}${status.active_pids.length > 0 ? `; pids ${status.active_pids.join(' ')}` : ''}\n`,
  );
  return 0;
}
