import { findStored, readStoredServices, storedServiceInfo } from '../../daemon/offline.js';
import { defineCommand } from '../command-kit.js';
import { printJson, queryDaemonIfRunning, stateDir } from '../daemon-client.js';
import { formatBytes, formatDuration, inCliTerms, stateLabel, table, useColour } from '../format.js';

export const help = `Usage: tend status NAME [--json]

Everything about one service: its state and why, pid and the pids of its
whole tree, uptime, restarts, last exit, CPU, memory, ports, readiness,
whether it is unresponsive, its command and its log file.

Exit status: 0 when it is running, 3 when it is not, 1 when it cannot be
asked (e.g. unknown name).

Options:
      --json   print one JSON document
  -h, --help   show this help`;

export const { run } = defineCommand({
  name: 'status',
  help,
  flags: {},
  positionals: [{ name: 'NAME', service: true }],
  json: true,
  run: ({ args, json }) => status(args.NAME, json),
});

async function status(name: string, json: boolean): Promise<number> {
  // Asking starts no daemon: with none running, the stored definition says how the service ended.
  const dir = stateDir();
  const s = (await queryDaemonIfRunning('info', { name })) ?? storedServiceInfo(findStored(readStoredServices(dir, warn), name), dir);
  if (json) printJson(s);
  else {
    const colour = useColour(process.stdout);
    const exit = s.last_exit ? `${s.last_exit.signal ?? `code ${s.last_exit.code}`} at ${s.last_exit.at}` : '-';
    const rows: [string, string][] = [
      ['name', s.name],
      ['state', stateLabel(s, colour)],
      ['reason', s.reason === null ? '-' : inCliTerms(s.reason)],
      ['pid', s.pid === null ? '-' : String(s.pid)],
      ['tree', s.pids.length === 0 ? '-' : s.pids.join(' ')],
      ['uptime', formatDuration(s.uptime_ms)],
      ['restarts', String(s.restarts)],
      ['last exit', exit],
      ['cpu', s.cpu_percent === null ? '-' : `${s.cpu_percent.toFixed(1)}%`],
      ['memory', formatBytes(s.memory_bytes)],
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

function warn(message: string): void {
  process.stderr.write(`tend: warning: ${message}\n`);
}
