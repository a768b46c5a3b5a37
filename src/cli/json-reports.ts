/**
 * The `--json` documents of the commands whose report is a library object.
 * The library keeps JavaScript's camelCase (`RecoveryReport`, `Capabilities`
 * are public API); every JSON document tend prints is snake_case, so these
 * map field by field. The other commands print the daemon's results, which
 * are snake_case at the source.
 */
import { strategyNames, type StrategyName } from '../core/types.js';
import type { Capabilities } from '../platform/detect.js';
import type { RecoveryReport } from '../registry/recover.js';

export interface RecoveryJson {
  readonly state_dir: string;
  readonly dry_run: boolean;
  readonly trees: readonly {
    readonly handle: string;
    readonly name: string | null;
    readonly strategy: string;
    readonly manager_pid: number;
    readonly pids: readonly number[];
    readonly cgroup: string | null;
    readonly cgroup_removed: boolean;
    readonly reason: string;
  }[];
  readonly corrupt: readonly { readonly file: string; readonly moved_to: string; readonly reason: string }[];
  /** Trees left alone because their manager is alive. */
  readonly live: number;
  readonly count: number;
  /** Every pid of every tree, in tree order. */
  readonly pids: readonly number[];
  readonly handles: readonly string[];
}

export function recoveryJson(report: RecoveryReport & { readonly stateDir: string }): RecoveryJson {
  return {
    state_dir: report.stateDir,
    dry_run: report.dryRun,
    trees: report.trees.map((t) => ({
      handle: t.handle,
      name: t.name,
      strategy: t.strategy,
      manager_pid: t.managerPid,
      pids: t.pids,
      cgroup: t.cgroup,
      cgroup_removed: t.cgroupRemoved,
      reason: t.reason,
    })),
    corrupt: report.corrupt.map((c) => ({ file: c.file, moved_to: c.movedTo, reason: c.reason })),
    live: report.live,
    count: report.trees.length,
    pids: report.trees.flatMap((t) => t.pids),
    handles: report.trees.map((t) => t.handle),
  };
}

export interface CapabilitiesJson {
  readonly platform: string;
  /** Keyed by strategy name, strongest first. */
  readonly strategies: Readonly<Record<StrategyName, { readonly available: boolean; readonly reason: string }>>;
  /** What "auto" picks here; null when no strategy is available. */
  readonly best: StrategyName | null;
  readonly parent_death_signal: { readonly available: boolean; readonly via: string; readonly reason: string };
  /** null when cgroup v2 is not usable. */
  readonly cgroup: { readonly mount: string; readonly parent: string; readonly cgroup_kill: boolean } | null;
}

export function capabilitiesJson(caps: Capabilities): CapabilitiesJson {
  const pd = caps.parentDeathSignal;
  return {
    platform: caps.platform,
    strategies: Object.fromEntries(strategyNames.map((name) => [name, { available: caps.strategies[name].available, reason: caps.strategies[name].reason }])) as CapabilitiesJson['strategies'],
    best: caps.best ?? null,
    parent_death_signal: { available: pd.available, via: pd.via, reason: pd.reason },
    cgroup: caps.cgroup ? { mount: caps.cgroup.mount, parent: caps.cgroup.parent, cgroup_kill: caps.cgroup.cgroupKill } : null,
  };
}
