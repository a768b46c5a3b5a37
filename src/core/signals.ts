import { constants } from 'node:os';

export type SignalName = NodeJS.Signals;

const byName = constants.signals as Readonly<Record<string, number>>;
const byNumber = new Map<number, SignalName>();
for (const [name, num] of Object.entries(byName)) {
  // SIGIOT and SIGPOLL alias other numbers; the first name wins, as kill -l shows it.
  if (!byNumber.has(num)) byNumber.set(num, name as SignalName);
}

/** Returns the canonical signal name for a name ("TERM", "sigterm", "SIGTERM") or number, or undefined. */
export function parseSignal(value: unknown): SignalName | undefined {
  if (typeof value === 'number') return Number.isInteger(value) ? byNumber.get(value) : undefined;
  if (typeof value !== 'string' || value === '') return undefined;
  if (/^\d+$/.test(value)) return byNumber.get(Number(value));
  const upper = value.toUpperCase();
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  return name in byName ? (name as SignalName) : undefined;
}

export function signalNumber(name: SignalName): number {
  const num = byName[name];
  if (num === undefined) throw new RangeError(`unknown signal ${name}`);
  return num;
}

export function signalName(num: number): SignalName | undefined {
  return byNumber.get(num);
}
