import type { SignalName } from '../core/signals.js';
import type { NormalizedSpec, StrategyName } from '../core/types.js';
import type { ProcessIdentity } from './identity.js';
import type { ProcEntry, ProcessTable } from './proc-table.js';

/** What to hand to child_process.spawn for one managed process. */
export interface LaunchPlan {
  readonly file: string;
  readonly args: readonly string[];
  readonly argv0: string;
  /** Whether the child gets a status pipe on fd 3. */
  readonly statusFd: boolean;
}

/** The direct child, once spawned. */
export interface AttachedChild {
  readonly identity: ProcessIdentity;
  /** Settles when the direct child has exited and been reaped. */
  readonly exited: Promise<unknown>;
}

/**
 * One process tree's containment. Each strategy is one small layer with the
 * same hooks, in this order: plan (before spawn), attach (after spawn), then
 * members / signal / kill / waitEmpty while it runs, release once it is empty.
 */
export interface Containment {
  readonly strategy: StrategyName;
  /** The tree's cgroup directory, when it has one. */
  readonly cgroup: string | undefined;
  plan(spec: NormalizedSpec): LaunchPlan;
  attach(child: AttachedChild): void;
  /** The pid to show for the tree's leader (the user's command, not a wrapper). */
  leaderPid(): number | undefined;
  /** Live members of the tree, host pids, wrappers excluded. */
  members(): number[];
  /**
   * The same members with their process-table entries (CPU time and resident
   * memory included), from one read of each member's /proc/<pid>/stat; a
   * member that exits while they are read is left out.
   */
  memberEntries(): ProcEntry[];
  /** Sends `signal` to every live member; false when none was left. */
  signal(signal: SignalName): boolean;
  /** Resolves once no member of the tree is alive. */
  waitEmpty(abort: AbortSignal): Promise<void>;
  isEmpty(): boolean;
  /** Frees what containment created; call once the tree is empty. */
  release(): void;
}

export interface ContainmentContext {
  readonly handle: string;
  readonly table: ProcessTable;
  /** Arm a parent-death signal on the direct child. */
  readonly parentDeathSignal: boolean;
  /** Use the portable sh/setpriv trampoline instead of the native shim. */
  readonly portable: boolean;
}

export interface Strategy {
  readonly name: StrategyName;
  contain(context: ContainmentContext): Containment;
}
