/** Human output: tables, durations, sizes and colour (only on a terminal, never with NO_COLOR). */
import type { ServiceInfo, ServiceState } from '../supervisor/service-info.js';

export function useColour(stream: NodeJS.WriteStream): boolean {
  return stream.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
}

const codes = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, grey: 90, bold: 1 } as const;
export type Colour = keyof typeof codes;

export function paint(text: string, colour: Colour, on: boolean): string {
  return on ? `\u001b[${codes[colour]}m${text}\u001b[0m` : text;
}

const stateColours: Record<ServiceState, Colour> = {
  queued: 'blue',
  starting: 'yellow',
  running: 'green',
  backoff: 'yellow',
  stopping: 'yellow',
  stopped: 'grey',
  exited: 'grey',
  failed: 'red',
};

export function formatDuration(ms: number | null): string {
  if (ms === null) return '-';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return '-';
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit] as string}`;
}

// eslint-disable-next-line no-control-regex -- matching the escape character is the point
const ANSI_SGR = /\u001b\[[0-9;]*m/g;

/** Columns padded to their widest cell; colour codes do not count toward width. */
export function table(rows: readonly (readonly string[])[]): string {
  const visible = (cell: string): number => cell.replace(ANSI_SGR, '').length;
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visible(cell))));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] as number) - visible(cell)))).join('  ').trimEnd()).join('\n');
}

export function stateLabel(service: ServiceInfo, colour: boolean): string {
  const label = service.unresponsive ? `${service.state} (unresponsive)` : service.state;
  return paint(label, service.unresponsive ? 'red' : stateColours[service.state], colour);
}

export function servicesTable(services: readonly ServiceInfo[], colour: boolean): string {
  const header = ['NAME', 'STATE', 'PID', 'UPTIME', 'RESTARTS', 'CPU', 'MEM', 'PORTS'].map((h) => paint(h, 'bold', colour));
  const rows = services.map((s) => [
    s.name,
    stateLabel(s, colour),
    s.pid === null ? '-' : String(s.pid),
    formatDuration(s.uptime_ms),
    String(s.restarts),
    s.cpu_percent === null ? '-' : `${s.cpu_percent.toFixed(1)}%`,
    formatBytes(s.memory_bytes),
    s.ports.length === 0 ? '-' : s.ports.join(','),
  ]);
  return table([header, ...rows]);
}

/** `NAME: state (reason)`, one line, for progress output. */
export function serviceLine(service: ServiceInfo, colour: boolean): string {
  const pid = service.pid === null ? '' : ` pid ${service.pid}`;
  return `${service.name}: ${stateLabel(service, colour)}${pid}${service.reason ? ` (${inCliTerms(service.reason)})` : ''}`;
}

/**
 * A message of the library's, with its advice in the command line's terms:
 * the flags and tend.yaml fields a user of the CLI writes, not the spec's fields.
 */
export function inCliTerms(message: string): string {
  return message.replace(
    'put its directory in env.PATH (or inheritEnv: ["PATH"])',
    'set PATH with --env PATH=DIRS or pass on this shell\'s with --inherit-env=PATH (in tend.yaml: env: { PATH: DIRS } or inherit_env: [PATH])',
  );
}
