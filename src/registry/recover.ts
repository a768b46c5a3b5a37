import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { pollUntil } from '../core/poll.js';
import { isCgroupPopulated, killCgroup, locateCgroup2, maybeRemoveCgroup, readCgroupMembers } from '../platform/cgroup.js';
import { isDead } from '../platform/identity.js';
import type { ProcEntry, ProcessTable } from '../platform/proc-table.js';
import { sendSignal } from '../platform/signal.js';
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
  const bootId = table.bootId();
  let live = 0;
  const stale: ProcessRecord[] = [];
  for (const record of records) {
    if (record.bootId === bootId && isManagerAlive(table, record.manager)) live++;
    // The claim is a rename: when several tends recover at once, each record is handled by one.
    else if (dryRun || store.claim(record.handle)) stale.push(record);
  }
  const trees = await cleanTrees(
    stale.filter((r) => r.bootId === bootId),
    table,
    dryRun,
    context.timeoutMs ?? 2000,
  );
  for (const record of stale.filter((r) => r.bootId !== bootId)) trees.push(fromEarlierBoot(record));
  if (!dryRun) {
    for (const tree of trees) {
      for (const pid of tree.pids) log?.append({ event: 'orphan-cleanup', handle: tree.handle, pid, reason: tree.reason });
      if (tree.pids.length === 0) log?.append({ event: 'orphan-cleanup', handle: tree.handle, pid: null, reason: tree.reason });
      store.release(tree.handle);
    }
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

interface Orphan {
  readonly record: ProcessRecord;
  readonly cgroup: string | null;
  /** No member started before this. */
  readonly notBefore: number;
}

/**
 * Members of every orphan at once, from one pass over the process table:
 * the cost of recovery grows with the process table, not with it times the
 * number of records. Marker holders are members; members of the recorded
 * process group only if the group is proven the tree's (see scanTree): a
 * dead leader's pid and group number may belong to a stranger by now.
 */
function findMembers(orphans: readonly Orphan[], table: ProcessTable): Map<string, ProcEntry[]> {
  const members = new Map<string, ProcEntry[]>(orphans.map((o) => [o.record.handle, []]));
  if (orphans.length === 0) return members;
  const byHandle = new Map(orphans.map((o) => [o.record.handle, o]));
  const byPgid = new Map(orphans.filter((o) => o.record.pgid !== null).map((o) => [o.record.pgid as number, o]));
  const group = new Map<string, ProcEntry[]>();
  const proven = new Set<string>();
  const earliest = Math.min(...orphans.map((o) => o.notBefore));
  for (const e of table.list()) {
    if (isDead(e) || e.startTime < earliest) continue;
    const marked = byHandle.get(table.marker(e.pid) ?? '');
    // A descendant cannot predate its tree: the start time also rules out a stranger that forged the marker.
    if (marked && e.startTime >= marked.notBefore) members.get(marked.record.handle)?.push(e);
    const grouped = byPgid.get(e.pgid);
    if (!grouped || grouped === marked || e.startTime < grouped.notBefore) continue;
    const { handle, pid, startTime } = grouped.record;
    if (e.pid === pid && e.startTime === startTime) proven.add(handle);
    let list = group.get(handle);
    if (!list) group.set(handle, (list = []));
    list.push(e);
  }
  for (const [handle, list] of group) {
    if (proven.has(handle) || (members.get(handle)?.some((m) => m.pgid === byHandle.get(handle)?.record.pgid) ?? false)) members.get(handle)?.push(...list);
  }
  return members;
}

/**
 * The record's cgroup, if it is one tend could have made for this tree: a
 * directory named after the handle, below (not at) a cgroup2 mount, and not
 * holding this process. A record is a file anyone with the state directory
 * could edit; it must not steer cgroup.kill at a system slice.
 */
function trustedCgroup(record: ProcessRecord, mount: string | undefined): string | null {
  const dir = record.cgroup;
  if (dir === null || mount === undefined || !existsSync(dir)) return null;
  if (basename(dir) !== record.handle || !dir.startsWith(`${mount}/`) || dir.includes('/../') || dir.includes('/./')) return null;
  const own = locateCgroup2()?.own ?? '/';
  const relative = dir.slice(mount.length);
  if (own === relative || own.startsWith(`${relative}/`)) return null;
  return dir;
}

async function cleanTrees(records: readonly ProcessRecord[], table: ProcessTable, dryRun: boolean, timeoutMs: number): Promise<RecoveredTree[]> {
  const mount = records.some((r) => r.cgroup !== null) ? locateCgroup2()?.mount : undefined;
  const orphans: Orphan[] = records.map((record) => ({
    record,
    cgroup: trustedCgroup(record, mount),
    notBefore: record.startTime ?? record.notBefore,
  }));
  const pidsOf = (members: Map<string, ProcEntry[]>, o: Orphan): number[] => {
    const pids = new Set((members.get(o.record.handle) ?? []).map((e) => e.pid));
    if (o.cgroup) for (const pid of readCgroupMembers(o.cgroup)) pids.add(pid);
    return [...pids].sort((a, b) => a - b);
  };
  const found = findMembers(orphans, table);
  const foundPids = new Map(orphans.map((o) => [o.record.handle, pidsOf(found, o)]));
  if (!dryRun) await killUntilGone(orphans, table, found, timeoutMs);
  const left = dryRun ? undefined : findMembers(orphans, table);
  return orphans.map((o) => {
    const { record } = o;
    const leftPids = left ? pidsOf(left, o) : [];
    const reason = `manager ${record.manager.pid} is gone`;
    return {
      handle: record.handle,
      name: record.name,
      strategy: record.strategy,
      managerPid: record.manager.pid,
      cgroup: record.cgroup,
      pids: foundPids.get(record.handle) ?? [],
      cgroupRemoved: !dryRun && o.cgroup !== null && leftPids.length === 0 && maybeRemoveCgroup(o.cgroup),
      reason: leftPids.length === 0 ? reason : `${reason}; still alive after SIGKILL: ${leftPids.join(', ')}`,
    };
  });
}

/** SIGKILL every member of every orphan (cgroup, group, each process; identity-checked), again until a pass finds nobody. */
async function killUntilGone(orphans: readonly Orphan[], table: ProcessTable, first: Map<string, ProcEntry[]>, timeoutMs: number): Promise<void> {
  const bootId = table.bootId();
  const killAll = (members: Map<string, ProcEntry[]>): boolean => {
    let any = false;
    for (const o of orphans) {
      if (o.cgroup && isCgroupPopulated(o.cgroup)) any = killCgroup(o.cgroup) || any;
      for (const e of members.get(o.record.handle) ?? []) {
        const identity = { pid: e.pid, startTime: e.startTime, bootId };
        const pgid = o.record.pgid;
        // The group first, vouched for by this member, so forks racing the scan are caught too.
        if (pgid !== null && e.pgid === pgid) sendSignal(table, { kind: 'group', pgid, member: identity }, 'SIGKILL');
        any = sendSignal(table, { kind: 'process', identity }, 'SIGKILL') || any;
      }
    }
    return any;
  };
  if (!killAll(first)) return;
  try {
    await pollUntil(() => !killAll(findMembers(orphans, table)), AbortSignal.timeout(timeoutMs));
  } catch {
    // Whatever is still alive is reported by the caller.
  }
}

/** Recovery without a manager, as `tend recover` runs it: the state directory from the environment unless given. */
export async function recoverStateDir(options: { stateDir?: string; dryRun?: boolean; table: ProcessTable }): Promise<RecoveryReport & { stateDir: string }> {
  const stateDir = ensureStateDir(options.stateDir ?? resolveStateDir());
  const report = await recoverOrphans({ store: new RecordStore(stateDir), log: new LifecycleLog(stateDir), table: options.table, dryRun: options.dryRun });
  return { ...report, stateDir };
}
