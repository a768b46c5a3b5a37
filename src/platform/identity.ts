import { pollUntil } from '../core/poll.js';
import type { ProcEntry, ProcessTable } from './proc-table.js';

/** What makes a pid *this* process: the pid is recycled, the start time and boot are not. */
export interface ProcessIdentity {
  readonly pid: number;
  readonly startTime: number;
  readonly bootId: string;
}

/** Reads the identity of a live process, or undefined when it is gone (or a zombie). */
export function readIdentity(table: ProcessTable, pid: number): ProcessIdentity | undefined {
  const entry = table.read(pid);
  if (!entry || isDead(entry)) return undefined;
  return { pid, startTime: entry.startTime, bootId: table.bootId() };
}

/** A zombie has no code left to run: for tend it is gone. */
export function isDead(entry: ProcEntry): boolean {
  return entry.state === 'Z' || entry.state === 'X' || entry.state === 'x';
}

/** Whether `entry` is the process `id` names (same boot, same start time, not dead). */
export function matchesIdentity(table: ProcessTable, id: ProcessIdentity, entry: ProcEntry | undefined): boolean {
  return (
    entry !== undefined &&
    entry.pid === id.pid &&
    !isDead(entry) &&
    entry.startTime === id.startTime &&
    id.bootId === table.bootId()
  );
}

/** Resolves true once the process `id` names is gone (or is a zombie), false if it still runs after `timeoutMs`. */
export async function waitIdentityGone(table: ProcessTable, id: ProcessIdentity, timeoutMs: number): Promise<boolean> {
  const deadline = AbortSignal.timeout(timeoutMs);
  try {
    await pollUntil(() => !matchesIdentity(table, id, table.read(id.pid)), deadline, { maxIntervalMs: 100 });
    return true;
  } catch (error) {
    if (deadline.aborted) return false;
    throw error;
  }
}
