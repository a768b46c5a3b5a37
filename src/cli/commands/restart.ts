import { parseArgs, parseDuration, usageError } from '../args.js';
import { callDaemon } from '../daemon-client.js';
import { checkName, printStartReport } from './start.js';

export const help = `Usage: tend restart NAME [--timeout DUR] [--json]

Stops the service's whole tree (as \`tend stop\` does) and starts it again
with the same definition; returns once it runs (and is ready). Its count of
restarts in a row starts over.

Options:
      --timeout DUR   grace before SIGKILL when stopping (default: the service's stop timeout)
      --no-queue      over the limit, fail at once instead of waiting
      --json          print one JSON document
  -h, --help          show this help`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseArgs(
    argv,
    [
      { name: 'timeout', kind: 'string', short: 't' },
      { name: 'no-queue', kind: 'boolean' },
      { name: 'json', kind: 'boolean' },
      { name: 'help', kind: 'boolean', short: 'h' },
    ],
    'restart',
  );
  if (parsed.flags.help) {
    process.stdout.write(`${help}\n`);
    return 0;
  }
  const [rawName, extra] = parsed.positionals;
  const name = checkName(rawName, 'restart');
  if (extra !== undefined || parsed.rest) throw usageError(`tend restart: one service at a time; unexpected ${JSON.stringify(extra ?? '--')}`);
  const timeoutMs = typeof parsed.flags.timeout === 'string' ? parseDuration(parsed.flags.timeout, 'timeout') : undefined;
  const report = await callDaemon('restart', { name, timeoutMs, queue: parsed.flags['no-queue'] !== true }, { start: true });
  printStartReport(report, parsed.flags.json === true);
  return 0;
}
