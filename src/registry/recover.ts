import { existsSync } from 'node:fs';
import { pollUntil } from '../core/poll.js';
import { isCgroupPopulated, killCgroup, maybeRemoveCgroup, readCgroupMembers } from '../platform/cgroup.js';
import type { ProcessTable } from '../platform/proc-table.js';
import { sendSignal } from '../platform/signal.js';
import { scanTree } from '../platform/tree-scan.js';
import { LifecycleLog } from './lifecycle-log.js';
import { isManagerAlive } from './manager-file.js';
import { RecordStore, type CorruptRecord, type ProcessRecord } from './records.js';
import { ensureStateDir, resolveStateDir } from './state-dir.js';

export interface RecoveredTree {
  readonly handle: string;
  readonly name: string | null;
  readonly strategy: string;
  readonly managerPid: number;
  /** Members found alive (and killed, unless this was a dry run). */
  readonly pids: readonly number[];
  readonly cgroup: string | null;
  readonly cgroupRemoved: boolean;
  readonly reason: string;
}

export interface RecoveryReport {
  readonly dryRun: boolean;
  readonly trees: readonly RecoveredTree[];
  readonly corrupt: readonly CorruptRecord[];
  /** Records left alone because their manager is alive. */
  readonly live: number;
}

export interface RecoveryContext {
  readonly store: RecordStore;
  readonly table: ProcessTable;
  readonly log?: LifecycleLog | undefined;
  readonly dryRun?: boolean | undefined;
  /** How long to wait for killed members to be gone. */
  readonly timeoutMs?: number | undefined;
}

/**
 * Finds records whose manager is gone (by identity, not by "pid alive") and
 * kills what is left of their trees: the leftover cgroup (the strongest
 * evidence), then every process carrying the tree's marker, then its process
 * group; each identity-checked so a stranger that inherited a pid or pgid is
 * never touched. Records from an earlier boot only need removing.
 */
export async function recoverOrphans(context: RecoveryContext): Promise<RecoveryReport> {
  const { store, table, log } = context;
  const dryRun = context.dryRun === true;
  const { records, corrupt } = store.list();
  for (const c of corrupt) log?.append({ event: 'corrupt-record', handle: null, pid: null, reason: `${c.file}: ${c.reason}; moved to ${c.movedTo}` });
  const trees: RecoveredTree[] = [];
  let live = 0;
  const bootId = table.bootId();
  for (const record of records) {
    if (record.bootId === bootId && isManagerAlive(table, record.manager)) {
      live++;
      continue;
    }
    if (!dryRun && !store.claim(record.handle)) continue; // another tend is recovering it
    const tree = record.bootId === bootId ? await cleanTree(record, table, dryRun, context.timeoutMs ?? 2000) : fromEarlierBoot(record);
    trees.push(tree);
    if (dryRun) continue;
    for (const pid of tree.pids) log?.append({ event: 'orphan-cleanup', handle: record.handle, pid, reason: tree.reason });
    if (tree.pids.length === 0) log?.append({ event: 'orphan-cleanup', handle: record.handle, pid: null, reason: tree.reason });
    store.release(record.handle);
  }
  return { dryRun, trees, corrupt, live };
}

function fromEarlierBoot(record: ProcessRecord): RecoveredTree {
  return {
    handle: record.handle,
    name: record.name,
    strategy: record.strategy,
    managerPid: record.manager.pid,
    pids: [],
    cgroup: record.cgroup,
    cgroupRemoved: false,
    reason: 'record from an earlier boot: nothing of it can be alive',
  };
}

async function cleanTree(record: ProcessRecord, table: ProcessTable, dryRun: boolean, timeoutMs: number): Promise<RecoveredTree> {
  const cgroup = record.cgroup !== null && existsSync(record.cgroup) ? record.cgroup : null;
  const scan = { handle: record.handle, notBefore: record.startTime ?? record.notBefore, pgid: record.pgid ?? undefined };
  const members = (): number[] => {
    const pids = new Set(scanTree(table, scan).map((e) => e.pid));
    if (cgroup) for (const pid of readCgroupMembers(cgroup)) pids.add(pid);
    return [...pids].sort((a, b) => a - b);
  };
  const found = members();
  const base = { handle: record.handle, name: record.name, strategy: record.strategy, managerPid: record.manager.pid, cgroup: record.cgroup };
  const reason = `manager ${record.manager.pid} is gone`;
  if (dryRun) return { ...base, pids: found, cgroupRemoved: false, reason };
  const killAll = (): void => {
    if (cgroup) killCgroup(cgroup);
    const bootId = table.bootId();
    for (const e of scanTree(table, scan)) {
      const identity = { pid: e.pid, startTime: e.startTime, bootId };
      // The group first, vouched for by this member, so forks racing the scan are caught too.
      if (record.pgid !== null && e.pgid === record.pgid) sendSignal(table, { kind: 'group', pgid: record.pgid, member: identity }, 'SIGKILL');
      sendSignal(table, { kind: 'process', identity }, 'SIGKILL');
    }
  };
  killAll();
  try {
    await pollUntil(
      () => {
        if (members().length === 0 && !(cgroup && isCgroupPopulated(cgroup))) return true;
        killAll();
        return false;
      },
      AbortSignal.timeout(timeoutMs),
    );
  } catch {
    // Reported below: whatever is still alive stays in the report.
  }
  const left = members();
  const cgroupRemoved = cgroup !== null && left.length === 0 && maybeRemoveCgroup(cgroup);
  return { ...base, pids: found, cgroupRemoved, reason: left.length === 0 ? reason : `${reason}; still alive after SIGKILL: ${left.join(', ')}` };
}

/** Recovery without a manager, as `tend recover` runs it: the state directory from the environment unless given. */
export async function recoverStateDir(options: { stateDir?: string; dryRun?: boolean; table: ProcessTable }): Promise<RecoveryReport & { stateDir: string }> {
  const stateDir = ensureStateDir(options.stateDir ?? resolveStateDir());
  const report = await recoverOrphans({ store: new RecordStore(stateDir), log: new LifecycleLog(stateDir), table: options.table, dryRun: options.dryRun });
  return { ...report, stateDir };
}
