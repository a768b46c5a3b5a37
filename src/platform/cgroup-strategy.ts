import { join } from 'node:path';
import { TendError } from '../core/errors.js';
import { whenAborted } from '../core/poll.js';
import type { SignalName } from '../core/signals.js';
import { MARKER_VARIABLE, type NormalizedSpec } from '../core/types.js';
import {
  createCgroup,
  isCgroupPopulated,
  killCgroup,
  maybeRemoveCgroup,
  readCgroupMembers,
  waitCgroupEmpty,
} from './cgroup.js';
import { shimPlan } from './launch.js';
import { isDead, type ProcessIdentity } from './identity.js';
import { sendSignal } from './signal.js';
import type { ProcEntry } from './proc-table.js';
import type { AttachedChild, Containment, ContainmentContext, LaunchPlan, Strategy } from './strategy.js';

/** A fork bomb could outrun any number of passes; the SIGKILL at the deadline is atomic and catches it. */
const MAX_SIGNAL_PASSES = 8;

export interface CgroupStrategyOptions {
  /** The cgroup2 mount point. */
  readonly mount: string;
  /** Directory under which each tree gets its own cgroup. */
  readonly parent: string;
  /** Use freeze + kill-each instead of cgroup.kill (for kernels before 5.14; forced in tests). */
  readonly forceKillFallback?: boolean;
}

/**
 * Each tree gets its own cgroup, created before spawn; the child joins it
 * before exec (see launch.ts), so no descendant can be born outside it.
 * Membership is cgroup.procs, "all gone" is cgroup.events, and SIGKILL is
 * cgroup.kill: atomic, forks included.
 */
class CgroupContainment implements Containment {
  readonly strategy = 'cgroup' as const;
  readonly cgroup: string;
  #leader: ProcessIdentity | undefined;
  #exited: Promise<unknown> | undefined;
  #leaderGone = false;

  constructor(
    private readonly context: ContainmentContext,
    private readonly options: CgroupStrategyOptions,
  ) {
    this.cgroup = join(options.parent, context.handle);
  }

  plan(spec: NormalizedSpec): LaunchPlan {
    try {
      createCgroup(this.cgroup);
    } catch (error) {
      throw new TendError(
        'CONTAINMENT_FAILED',
        { strategy: 'cgroup', reason: `cannot create ${this.cgroup}: ${(error as Error).message}`, fix: 'Run `tend detect` or use strategy "pgroup".' },
        { cause: error },
      );
    }
    return shimPlan(spec, {
      parentDeathSignal: this.context.parentDeathSignal,
      cgroupProcs: join(this.cgroup, 'cgroup.procs'),
      portable: this.context.portable,
      env: { ...spec.env, [MARKER_VARIABLE]: this.context.handle },
    });
  }

  attach(child: AttachedChild): void {
    this.#leader = child.identity;
    this.#exited = child.exited;
    const settle = (): void => {
      this.#leaderGone = true;
    };
    child.exited.then(settle, settle);
  }

  /**
   * The direct child joins the cgroup itself, a moment after spawn returns
   * (the shim writes cgroup.procs, then execs). Until it has exited it counts
   * as a member wherever it is, so a stop issued right after start() reaches
   * it, and an empty cgroup seen before the join does not mean "all gone".
   * It is our unreaped child, so its pid cannot have been reused.
   */
  #leaderAlive(): boolean {
    const leader = this.#leader;
    if (!leader || this.#leaderGone) return false;
    const entry = this.context.table.read(leader.pid);
    return entry !== undefined && !isDead(entry) && entry.startTime === leader.startTime;
  }

  leaderPid(): number | undefined {
    return this.#leader?.pid;
  }

  members(): number[] {
    const pids = readCgroupMembers(this.cgroup);
    const leader = this.#leader?.pid;
    if (leader !== undefined && !pids.includes(leader) && this.#leaderAlive()) pids.push(leader);
    return pids;
  }

  memberEntries(): ProcEntry[] {
    const { table } = this.context;
    const entries: ProcEntry[] = [];
    let leaderListed = false;
    const leader = this.#leader;
    for (const pid of readCgroupMembers(this.cgroup)) {
      // Listed by the cgroup, so ours: the entry is read for its usage, not as proof.
      const entry = table.read(pid);
      if (!entry) continue;
      entries.push(entry);
      if (pid === leader?.pid) leaderListed = true;
    }
    // The leader before it has joined (see #leaderAlive): only then is it read apart.
    if (leader && !leaderListed && !this.#leaderGone) {
      const entry = table.read(leader.pid);
      if (entry && !isDead(entry) && entry.startTime === leader.startTime) entries.push(entry);
    }
    return entries;
  }

  signal(signal: SignalName): boolean {
    const { table } = this.context;
    let sent = false;
    const leader = this.#leader;
    if (leader && this.#leaderAlive() && !readCgroupMembers(this.cgroup).includes(leader.pid)) {
      sent = sendSignal(table, { kind: 'process', identity: leader }, signal);
    }
    if (signal === 'SIGKILL') return killCgroup(this.cgroup, this.options.forceKillFallback) || sent;
    // No file signals a whole cgroup, so each member is signalled; a member
    // may fork while we go, so re-read until a pass finds no new pid (each
    // pid gets the signal once: a second SIGINT means "force" to many tools).
    const signalled = new Set<number>();
    for (let pass = 0; pass < MAX_SIGNAL_PASSES; pass++) {
      const fresh = readCgroupMembers(this.cgroup).filter((pid) => !signalled.has(pid));
      if (fresh.length === 0) break;
      for (const pid of fresh) signalled.add(pid);
      sent = sendSignal(table, { kind: 'cgroup', dir: this.cgroup, pids: fresh }, signal) || sent;
    }
    return sent;
  }

  async waitEmpty(abort: AbortSignal): Promise<void> {
    // Once the direct child has exited it has either joined or died before
    // its exec: from then on the cgroup alone holds the whole tree.
    if (this.#exited && !this.#leaderGone) await Promise.race([this.#exited.catch(() => undefined), whenAborted(abort)]);
    abort.throwIfAborted();
    await waitCgroupEmpty(this.cgroup, abort);
  }

  isEmpty(): boolean {
    return !this.#leaderAlive() && !isCgroupPopulated(this.cgroup);
  }

  release(): void {
    maybeRemoveCgroup(this.cgroup);
  }
}

export function createCgroupStrategy(options: CgroupStrategyOptions): Strategy {
  return { name: 'cgroup', contain: (context) => new CgroupContainment(context, options) };
}
