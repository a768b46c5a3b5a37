import { readFileSync } from 'node:fs';
import { TendError, errnoOf } from '../core/errors.js';
import type { SignalName } from '../core/signals.js';
import { matchesIdentity, type ProcessIdentity } from './identity.js';
import type { ProcessTable } from './proc-table.js';

/**
 * Who a signal goes to: one process; a whole process group vouched for by one
 * verified member; or one member of a cgroup, vouched for by its membership
 * (`cgroup` is the path below the cgroup2 mount, as /proc/<pid>/cgroup shows it).
 */
export type SignalTarget =
  | { readonly kind: 'process'; readonly identity: ProcessIdentity }
  | { readonly kind: 'group'; readonly pgid: number; readonly member: ProcessIdentity }
  | { readonly kind: 'cgroup-member'; readonly pid: number; readonly cgroup: string };

/** The syscall, behind a seam so tests can watch what would be sent. */
export type KillFn = (pid: number, signal: SignalName | 0) => void;
const realKill: KillFn = (pid, signal) => {
  process.kill(pid, signal);
};

/**
 * The one function that sends every signal tend sends. It checks the target
 * against what tend recorded (pid, start time, boot id; for a group, that the
 * vouching member is still ours and still in that group) and never signals a
 * recycled pid.
 *
 * Returns true when the signal was delivered, false when the target is already
 * gone (ESRCH, or the pid now belongs to another process). Throws on EPERM.
 */
export function sendSignal(table: ProcessTable, target: SignalTarget, signal: SignalName, kill: KillFn = realKill): boolean {
  if (!verifyTarget(table, target)) return false;
  // Between this check and the kill the pid could only be reused if the
  // process exited, was reaped and its pid recycled within microseconds; for a
  // direct child that cannot happen at all, as tend has not reaped it yet.
  const pid = target.kind === 'process' ? target.identity.pid : target.kind === 'group' ? -target.pgid : target.pid;
  try {
    kill(pid, signal);
    return true;
  } catch (error) {
    const errno = errnoOf(error);
    if (errno === 'ESRCH') return false;
    if (errno === 'EPERM') throw new TendError('SIGNAL_DENIED', { signal, pid }, { cause: error });
    throw error;
  }
}

function verifyTarget(table: ProcessTable, target: SignalTarget): boolean {
  if (target.kind === 'cgroup-member') {
    const own = readCgroupOf(target.pid);
    return own !== undefined && (own === target.cgroup || own.startsWith(`${target.cgroup}/`));
  }
  const id = target.kind === 'process' ? target.identity : target.member;
  const entry = table.read(id.pid);
  if (!matchesIdentity(table, id, entry)) return false;
  return target.kind === 'process' || entry?.pgid === target.pgid;
}

/** The cgroup v2 path of a process ("0::" line of /proc/<pid>/cgroup), or undefined when it is gone. */
export function readCgroupOf(pid: number): string | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/cgroup`, 'latin1')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    return line?.slice(3);
  } catch {
    return undefined;
  }
}
