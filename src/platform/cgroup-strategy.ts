import { join } from 'node:path';
import { TendError } from '../core/errors.js';
import type { SignalName } from '../core/signals.js';
import type { NormalizedSpec } from '../core/types.js';
import {
  createCgroup,
  isCgroupPopulated,
  killCgroup,
  maybeRemoveCgroup,
  readCgroupMembers,
  waitCgroupEmpty,
} from './cgroup.js';
import { shimPlan } from './launch.js';
import type { ProcessIdentity } from './identity.js';
import { sendSignal } from './signal.js';
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
  readonly #relative: string;
  #leader: ProcessIdentity | undefined;

  constructor(
    private readonly context: ContainmentContext,
    private readonly options: CgroupStrategyOptions,
  ) {
    this.cgroup = join(options.parent, context.handle);
    this.#relative = this.cgroup.slice(options.mount.length) || '/';
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
    });
  }

  attach(child: AttachedChild): void {
    this.#leader = child.identity;
  }

  leaderPid(): number | undefined {
    return this.#leader?.pid;
  }

  members(): number[] {
    return readCgroupMembers(this.cgroup);
  }

  signal(signal: SignalName): boolean {
    if (signal === 'SIGKILL') return killCgroup(this.cgroup, this.options.forceKillFallback);
    // No file signals a whole cgroup, so each member is signalled; a member
    // may fork while we go, so re-read until a pass finds no new pid (each
    // pid gets the signal once: a second SIGINT means "force" to many tools).
    const signalled = new Set<number>();
    let sent = false;
    for (let pass = 0; pass < MAX_SIGNAL_PASSES; pass++) {
      const fresh = this.members().filter((pid) => !signalled.has(pid));
      if (fresh.length === 0) break;
      for (const pid of fresh) {
        signalled.add(pid);
        sent = sendSignal(this.context.table, { kind: 'cgroup-member', pid, cgroup: this.#relative }, signal) || sent;
      }
    }
    return sent;
  }

  waitEmpty(abort: AbortSignal): Promise<void> {
    return waitCgroupEmpty(this.cgroup, abort);
  }

  isEmpty(): boolean {
    return !isCgroupPopulated(this.cgroup);
  }

  release(): void {
    maybeRemoveCgroup(this.cgroup);
  }
}

export function createCgroupStrategy(options: CgroupStrategyOptions): Strategy {
  return { name: 'cgroup', contain: (context) => new CgroupContainment(context, options) };
}
