import { isDead } from './identity.js';
import type { ProcEntry, ProcessTable } from './proc-table.js';

export interface TreeScan {
  /** The tree's handle: the value of TEND_ID in its members' environments. */
  readonly handle: string;
  /** No member started before this (clock ticks after boot). */
  readonly notBefore: number;
  /** The tree's process group, when it has one of its own. */
  readonly pgid?: number | undefined;
}

/**
 * Live members of a tree found in the process table: everything in its
 * process group, and everything carrying its marker (which survives setsid
 * and double forks). A descendant cannot have started before the tree did,
 * so the start time rules out almost every process before the costlier
 * environment read, and rules out a stranger that forged the marker earlier.
 */
export function scanTree(table: ProcessTable, scan: TreeScan): ProcEntry[] {
  return table
    .list()
    .filter((e) => !isDead(e) && e.startTime >= scan.notBefore && (e.pgid === scan.pgid || table.marker(e.pid) === scan.handle));
}
