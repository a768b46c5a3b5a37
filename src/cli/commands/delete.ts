import { defineCommand } from '../command-kit.js';
import { callDaemon, printJson } from '../daemon-client.js';

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
  const service = await callDaemon('delete', { name, timeoutMs }, { start: true });
  if (json) printJson({ deleted: service });
  else process.stdout.write(`deleted ${name}${service.log ? ` (its log stays at ${service.log})` : ''}\n`);
  return 0;
}
