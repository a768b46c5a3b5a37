import { isDead } from './identity.js';
import type { ProcEntry, ProcessTable } from './proc-table.js';

export interface TreeScan {
  /** The tree's handle: the value of TEND_ID in its members' environments. */
  readonly handle: string;
  /** No member started before this (clock ticks after boot). */
  readonly notBefore: number;
  /** The tree's process group (the leader's pid), when it has one of its own. */
  readonly pgid?: number | undefined;
  /** The leader's start time: a live leader proves its group is still ours. */
  readonly leaderStartTime?: number | undefined;
  /**
   * The group was proven ours by the previous scan and was not empty then. A
   * group number cannot be reused while the group has a member, so if it is
   * still not empty now, it is still the same group: proof carries over,
   * even once nobody left in it can show the marker (env -i children).
   */
  readonly groupProvenBefore?: boolean | undefined;
}

export interface TreeScanResult {
  readonly members: ProcEntry[];
  /** Whether the group counted as the tree's in this scan (carry it into the next). */
  readonly groupProven: boolean;
}

/**
 * Live members of a tree found in the process table: everything carrying its
 * marker (which survives setsid and double forks), and everything in its
 * process group, if the group is still provably the tree's. A group number is
 * the leader's pid, which can be reused once the group has emptied: then a
 * stranger's new group has the same number. So a group counts only while a
 * member proves it: the leader itself (pid and start time) or a marker holder.
 *
 * A descendant cannot have started before the tree did, so the start time
 * rules out almost every process before the costlier environment read, and
 * rules out a stranger that forged the marker earlier.
 */
export function scanTree(table: ProcessTable, scan: TreeScan): TreeScanResult {
  const members: ProcEntry[] = [];
  const group: ProcEntry[] = [];
  let groupProven = scan.groupProvenBefore === true;
  for (const e of table.list()) {
    if (isDead(e) || e.startTime < scan.notBefore) continue;
    const marked = table.marker(e.pid) === scan.handle;
    if (e.pgid === scan.pgid) {
      group.push(e);
      if (marked || (e.pid === scan.pgid && e.startTime === scan.leaderStartTime)) groupProven = true;
    } else if (marked) {
      members.push(e);
    }
  }
  if (group.length === 0) return { members, groupProven: false };
  if (groupProven) return { members: members.concat(group), groupProven: true };
  // An exiting process can no longer show its marker. Waiting for one that is
  // not provably ours is harmless (it is dying anyway), so it counts for "all
  // gone"; callers never signal an exiting member.
  return { members: members.concat(group.filter((e) => e.exiting === true || table.marker(e.pid) === scan.handle)), groupProven: false };
}
