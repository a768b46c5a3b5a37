import type { TreeUsage } from './managed-process.js';
import type { ProcessHandle } from './process-handle.js';

export type { TreeUsage } from './managed-process.js';

/**
 * A started tree's members, its command's pid and what it uses (CPU time,
 * resident memory), from one read of each member's /proc/<pid>/stat (and, for
 * a cgroup, one read of cgroup.procs): what `ps` shows of one service.
 */
export function readTreeUsage(handle: ProcessHandle): TreeUsage {
  return handle.managed.treeUsage();
}
