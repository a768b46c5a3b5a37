import { TendError, errnoOf } from '../core/errors.js';
import type { SignalName } from '../core/signals.js';
import { matchesIdentity, type ProcessIdentity } from './identity.js';
import type { ProcessTable } from './proc-table.js';

/**
 * Who a signal goes to: one process; a whole process group vouched for by one
 * verified member; or members of a tree's cgroup, vouched for by having just
 * been listed in its cgroup.procs.
 */
export type SignalTarget =
  | { readonly kind: 'process'; readonly identity: ProcessIdentity }
  | { readonly kind: 'group'; readonly pgid: number; readonly member: ProcessIdentity }
  | { readonly kind: 'cgroup'; readonly dir: string; readonly pids: readonly number[] };

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
  if (target.kind === 'cgroup') {
    // Listed in the tree's own cgroup.procs a moment ago: a pid could only
    // belong to someone else now if its process exited, was reaped and the
    // whole pid space wrapped round in between. A /proc/<pid>/cgroup read per
    // member would narrow that window no further (it too precedes the kill).
    // One member of another user must not keep the signal from the rest: deliver to all, then report the refusal.
    let sent = false;
    let denied: Error | undefined;
    for (const pid of target.pids) {
      if (pid <= 1) continue;
      try {
        sent = deliver(pid, signal, kill) || sent;
      } catch (error) {
        denied ??= error as Error;
      }
    }
    if (denied !== undefined) throw denied;
    return sent;
  }
  if (!verifyTarget(table, target)) return false;
  // Between this check and the kill the pid could only be reused if the
  // process exited, was reaped and its pid recycled within microseconds; for a
  // direct child that cannot happen at all, as tend has not reaped it yet.
  return deliver(target.kind === 'process' ? target.identity.pid : -target.pgid, signal, kill);
}

function deliver(pid: number, signal: SignalName, kill: KillFn): boolean {
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

function verifyTarget(table: ProcessTable, target: Exclude<SignalTarget, { kind: 'cgroup' }>): boolean {
  // kill(0) and kill(-1) mean "my group" and "everyone": no record may ever lead there.
  if (target.kind === 'group' ? target.pgid <= 1 : target.identity.pid <= 1) return false;
  const id = target.kind === 'process' ? target.identity : target.member;
  const entry = table.read(id.pid);
  if (!matchesIdentity(table, id, entry)) return false;
  return target.kind === 'process' || entry?.pgid === target.pgid;
}
