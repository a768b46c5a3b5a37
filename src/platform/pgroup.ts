import type { SignalName } from '../core/signals.js';
import type { NormalizedSpec } from '../core/types.js';
import type { ProcessIdentity } from './identity.js';
import { pollUntil } from '../core/poll.js';
import { sendSignal } from './signal.js';
import { scanTree } from './tree-scan.js';
import type { ProcEntry } from './proc-table.js';
import { shimPlan } from './launch.js';
import type { AttachedChild, Containment, ContainmentContext, LaunchPlan, Strategy } from './strategy.js';

/**
 * The POSIX baseline: the child leads its own session and process group, so
 * kill(-pgid) reaches everything that stayed in the group. Descendants that
 * left it (setsid daemons) still carry the marker variable in their
 * environment and are signalled one by one.
 */
class ProcessGroupContainment implements Containment {
  readonly strategy = 'pgroup' as const;
  readonly cgroup = undefined;
  #leader: ProcessIdentity | undefined;
  #exited: Promise<unknown> | undefined;
  #groupProven = false;

  constructor(private readonly context: ContainmentContext) {}

  plan(spec: NormalizedSpec): LaunchPlan {
    return shimPlan(spec, { parentDeathSignal: this.context.parentDeathSignal, portable: this.context.portable });
  }

  attach(child: AttachedChild): void {
    this.#leader = child.identity;
    this.#exited = child.exited;
    // The group is ours from birth: the leader (our unreaped child) holds its
    // number. From then on each scan carries the proof to the next, and it is
    // lost for good only when a scan finds the group empty. After the leader
    // exits, scans follow at once and at least every 50 ms until empty.
    this.#groupProven = true;
  }

  leaderPid(): number | undefined {
    return this.#leader?.pid;
  }

  #scan(): ProcEntry[] {
    const leader = this.#leader;
    if (!leader) return [];
    const { members, groupProven } = scanTree(this.context.table, {
      handle: this.context.handle,
      notBefore: leader.startTime,
      pgid: leader.pid,
      leaderStartTime: leader.startTime,
      groupProvenBefore: this.#groupProven,
    });
    this.#groupProven = groupProven;
    return members;
  }

  members(): number[] {
    return this.#scan().map((e) => e.pid);
  }

  memberEntries(): ProcEntry[] {
    return this.#scan();
  }

  signal(signal: SignalName): boolean {
    // An exiting member is dying already, and may not be provably ours (see scanTree): it neither vouches nor is signalled.
    const members = this.#scan().filter((e) => e.exiting !== true);
    if (members.length === 0) return false;
    const { table } = this.context;
    const bootId = table.bootId();
    const pgid = this.#leader?.pid;
    let sent = false;
    const inGroup = members.find((e) => e.pgid === pgid);
    if (inGroup && pgid !== undefined) {
      // One kill(-pgid) reaches the whole group atomically, including children forked since the scan.
      sent = sendSignal(table, { kind: 'group', pgid, member: { pid: inGroup.pid, startTime: inGroup.startTime, bootId } }, signal);
    }
    for (const e of members) {
      if (e.pgid === pgid) continue;
      sent = sendSignal(table, { kind: 'process', identity: { pid: e.pid, startTime: e.startTime, bootId } }, signal) || sent;
    }
    return sent;
  }

  async waitEmpty(abort: AbortSignal): Promise<void> {
    await pollUntil(() => this.isEmpty(), abort, this.#exited ? { wake: this.#exited } : {});
  }

  isEmpty(): boolean {
    return this.#scan().length === 0;
  }

  release(): void {}
}

export const pgroupStrategy: Strategy = {
  name: 'pgroup',
  contain: (context) => new ProcessGroupContainment(context),
};
