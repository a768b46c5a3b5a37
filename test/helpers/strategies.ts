import type { ManagerOptions, StrategyName } from '../../src/index.js';

/** A strategy, forced, with the manager options that select one of its variants. */
export interface StrategyConfig {
  readonly title: string;
  readonly strategy: StrategyName;
  readonly options: ManagerOptions;
}

/** The three strategies as tend runs them by default (native helpers, cgroup.kill). */
export const nativeStrategies: readonly StrategyConfig[] = [
  { title: 'cgroup', strategy: 'cgroup', options: {} },
  { title: 'pidns', strategy: 'pidns', options: {} },
  { title: 'pgroup', strategy: 'pgroup', options: {} },
];

/** Every strategy and every forced fallback: the sh/setpriv trampoline, and freeze-and-kill for cgroups. */
export const allStrategies: readonly StrategyConfig[] = [
  ...nativeStrategies,
  { title: 'cgroup, portable', strategy: 'cgroup', options: { portable: true } },
  { title: 'pgroup, portable', strategy: 'pgroup', options: { portable: true } },
  { title: 'cgroup, forceCgroupKillFallback', strategy: 'cgroup', options: { forceCgroupKillFallback: true } },
];
