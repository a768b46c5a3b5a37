import { parseArgs, parseDuration, usageError } from '../args.js';
import { callDaemon, printJson } from '../daemon-client.js';
import { checkName } from './start.js';

export const help = `Usage: tend delete NAME [--timeout DUR] [--json]

Stops the service (its whole tree) and forgets its definition. Its log files
are kept.

Options:
      --timeout DUR   grace before SIGKILL (default: the service's stop timeout)
      --json          print one JSON document
  -h, --help          show this help`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseArgs(
    argv,
    [
      { name: 'timeout', kind: 'string', short: 't' },
      { name: 'json', kind: 'boolean' },
      { name: 'help', kind: 'boolean', short: 'h' },
    ],
    'delete',
  );
  if (parsed.flags.help) {
    process.stdout.write(`${help}\n`);
    return 0;
  }
  const [rawName, extra] = parsed.positionals;
  const name = checkName(rawName, 'delete');
  if (extra !== undefined || parsed.rest) throw usageError(`tend delete: one service at a time; unexpected ${JSON.stringify(extra ?? '--')}`);
  const timeoutMs = typeof parsed.flags.timeout === 'string' ? parseDuration(parsed.flags.timeout, 'timeout') : undefined;
  const service = await callDaemon('delete', { name, timeoutMs }, { start: true });
  if (parsed.flags.json) printJson({ deleted: service });
  else process.stdout.write(`deleted ${name}${service.log ? ` (its log stays at ${service.log})` : ''}\n`);
  return 0;
}
