import { parseArgs, usageError } from '../args.js';
import { callDaemon, printJson } from '../daemon-client.js';
import { formatBytes, formatDuration, stateLabel, table, useColour } from '../format.js';
import { checkName } from './start.js';

export const help = `Usage: tend status NAME [--json]

Everything about one service: its state and why, pid and the pids of its
whole tree, uptime, restarts, last exit, CPU, memory, ports, readiness,
whether it is unresponsive, its command and its log file.

Exit status: 0 when it is running, 3 when it is not, 1 when it cannot be
asked (e.g. unknown name).

Options:
      --json   print one JSON document
  -h, --help   show this help`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseArgs(
    argv,
    [
      { name: 'json', kind: 'boolean' },
      { name: 'help', kind: 'boolean', short: 'h' },
    ],
    'status',
  );
  if (parsed.flags.help) {
    process.stdout.write(`${help}\n`);
    return 0;
  }
  const [rawName, extra] = parsed.positionals;
  const name = checkName(rawName, 'status');
  if (extra !== undefined || parsed.rest) throw usageError(`tend status: one service at a time; unexpected ${JSON.stringify(extra ?? '--')}`);
  const s = await callDaemon('info', { name }, { start: true });
  if (parsed.flags.json) printJson(s);
  else {
    const colour = useColour(process.stdout);
    const exit = s.lastExit ? `${s.lastExit.signal ?? `code ${s.lastExit.code}`} at ${s.lastExit.at}` : '-';
    const rows: [string, string][] = [
      ['name', s.name],
      ['state', stateLabel(s, colour)],
      ['reason', s.reason ?? '-'],
      ['pid', s.pid === null ? '-' : String(s.pid)],
      ['tree', s.pids.length === 0 ? '-' : s.pids.join(' ')],
      ['uptime', formatDuration(s.uptimeMs)],
      ['restarts', String(s.restarts)],
      ['last exit', exit],
      ['cpu', s.cpuPercent === null ? '-' : `${s.cpuPercent.toFixed(1)}%`],
      ['memory', formatBytes(s.memoryBytes)],
      ['ports', s.ports.length === 0 ? '-' : s.ports.join(', ')],
      ['ready', s.ready === null ? '-' : String(s.ready)],
      ['command', [s.command, ...s.args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')],
      ['cwd', s.cwd],
      ['restart', s.restart],
      ['log', s.log ?? '-'],
      ['strategy', s.strategy ?? '-'],
    ];
    process.stdout.write(`${table(rows.map(([k, v]) => [`${k}:`, v]))}\n`);
  }
  return s.state === 'running' ? 0 : 3;
}
