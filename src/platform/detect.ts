import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { TendError } from '../core/errors.js';
import type { StrategyChoice, StrategyName } from '../core/types.js';
import { locateCgroup2, probeCgroupParent } from './cgroup.js';
import { createCgroupStrategy } from './cgroup-strategy.js';
import { parentDeathSignalSupport } from './launch.js';
import { locateNativeHelper } from './native.js';
import { isLinux, isPosix, platformName } from './os.js';
import { pgroupStrategy } from './pgroup.js';
import { pidnsStrategy } from './pidns.js';
import type { Strategy } from './strategy.js';

export interface StrategySupport {
  readonly available: boolean;
  /** What makes it available, or why it is not. */
  readonly reason: string;
}

export interface Capabilities {
  readonly platform: string;
  /** Strongest first. */
  readonly strategies: Readonly<Record<StrategyName, StrategySupport>>;
  /** What "auto" picks here. */
  readonly best: StrategyName | undefined;
  readonly parentDeathSignal: { readonly available: boolean; readonly via: string; readonly reason: string };
  readonly cgroup: { readonly mount: string; readonly parent: string; readonly cgroupKill: boolean } | undefined;
}

export interface DetectOptions {
  /** Where per-tree cgroups go (default: <own cgroup>/tend). */
  readonly cgroupParent?: string | undefined;
  /** Ignore the native helpers, as if they had not been built. */
  readonly portable?: boolean | undefined;
}

const order: readonly StrategyName[] = ['cgroup', 'pidns', 'pgroup'];
const memo = new Map<string, unknown>();

/** Runs each probe once per process and option set: probes spawn helpers and touch cgroupfs. */
function remember<T>(key: string, probe: () => T): T {
  if (!memo.has(key)) memo.set(key, probe());
  return memo.get(key) as T;
}

interface CgroupSite {
  readonly mount: string;
  readonly parent: string;
  /** Our own cgroup directory. */
  readonly own: string;
}

function cgroupSite(options: DetectOptions): CgroupSite | undefined {
  return remember(`site|${options.cgroupParent ?? ''}`, () => {
    const location = isLinux ? locateCgroup2() : undefined;
    if (!location) return undefined;
    return {
      mount: location.mount,
      own: join(location.mount, location.own),
      parent: options.cgroupParent ?? defaultCgroupParent(location.mount, location.own),
    };
  });
}

/** Probes one strategy (lazily, once): "auto" stops at the first that works. */
export function detectStrategy(name: StrategyName, options: DetectOptions = {}): StrategySupport {
  const portable = options.portable === true;
  return remember(`${name}|${options.cgroupParent ?? ''}|${name === 'pidns' && portable}`, () => {
    switch (name) {
      case 'cgroup':
        return detectCgroup(cgroupSite(options));
      case 'pidns':
        return detectPidns(portable);
      case 'pgroup':
        return isPosix
          ? { available: true, reason: 'own session and process group; escaped descendants found by the TEND_ID marker' }
          : { available: false, reason: `process groups are POSIX-only (this is ${platformName})` };
    }
  });
}

/** Says which containment strategies this machine offers and, for each one it does not, why. Probes for real; cached. */
export function detect(options: DetectOptions = {}): Capabilities {
  const strategies = Object.fromEntries(order.map((s) => [s, detectStrategy(s, options)])) as Record<StrategyName, StrategySupport>;
  const site = cgroupSite(options);
  return {
    platform: platformName,
    strategies,
    best: order.find((s) => strategies[s].available),
    parentDeathSignal: detectParentDeathSignal(options.portable === true),
    cgroup: site && strategies.cgroup.available ? { mount: site.mount, parent: site.parent, cgroupKill: cgroupKillSupported(options) } : undefined,
  };
}

function cgroupKillSupported(options: DetectOptions): boolean {
  return (detectStrategy('cgroup', options) as { cgroupKill?: boolean }).cgroupKill === true;
}

export function detectParentDeathSignal(portable: boolean): Capabilities['parentDeathSignal'] {
  return remember(`pdeath|${portable}`, () =>
    isLinux
      ? parentDeathSignalSupport(portable)
      : { available: false, via: 'none', reason: `parent-death signals are Linux-only (this is ${platformName})` },
  );
}

export function defaultCgroupParent(mount: string, own: string): string {
  return join(mount, own, 'tend');
}

function detectCgroup(site: CgroupSite | undefined): StrategySupport & { cgroupKill?: boolean } {
  if (!isLinux) return { available: false, reason: `cgroups are Linux-only (this is ${platformName})` };
  if (!site) return { available: false, reason: 'no cgroup v2 filesystem is mounted (see /proc/self/mountinfo)' };
  const probe = probeCgroupParent(site.parent, site.parent.startsWith(`${site.own}/`) ? site.own : site.mount);
  if (!probe.ok) return { available: false, reason: probe.reason };
  return {
    available: true,
    reason: `cgroup v2 at ${site.mount}; each tree gets its own cgroup under ${site.parent}, joined before exec`,
    cgroupKill: probe.cgroupKill,
  };
}

function detectPidns(portable: boolean): StrategySupport {
  if (!isLinux) return { available: false, reason: `PID namespaces are Linux-only (this is ${platformName})` };
  if (portable) return { available: false, reason: 'needs the native tend-nsinit helper (portable mode was forced)' };
  const nsinit = locateNativeHelper('tend-nsinit');
  if (!nsinit.path) return { available: false, reason: nsinit.reason ?? 'tend-nsinit is missing' };
  const args = process.geteuid?.() === 0 ? [] : ['-u'];
  const run = spawnSync(nsinit.path, [...args, '--', '/bin/sh', 'sh', '-c', 'exit 0'], { stdio: ['ignore', 'ignore', 'pipe'], env: {} });
  if (run.status !== 0) {
    const why = run.stderr?.toString().trim() || (run.error?.message ?? `exit ${run.status}`);
    return { available: false, reason: `cannot create a PID namespace: ${why} (needs root or unprivileged user namespaces)` };
  }
  return { available: true, reason: `PID namespace with tend-nsinit as init${args.length ? ' inside a user namespace' : ''}` };
}

export interface StrategyOptions extends DetectOptions {
  /** Force the freeze-and-kill fallback instead of cgroup.kill. */
  readonly forceCgroupKillFallback?: boolean | undefined;
}

/** Picks the strategy for a spec: "auto" means the strongest available; a forced one must be available. */
export function selectStrategy(choice: StrategyChoice, options: StrategyOptions = {}): Strategy {
  const name = choice === 'auto' ? order.find((s) => detectStrategy(s, options).available) : choice;
  if (name === undefined) {
    const reason = order.map((s) => `${s}: ${detectStrategy(s, options).reason}`).join('; ');
    throw new TendError('STRATEGY_UNAVAILABLE', { strategy: 'auto', reason });
  }
  const support = detectStrategy(name, options);
  if (!support.available) throw new TendError('STRATEGY_UNAVAILABLE', { strategy: name, reason: support.reason });
  switch (name) {
    case 'cgroup': {
      const site = cgroupSite(options);
      if (!site) throw new TendError('STRATEGY_UNAVAILABLE', { strategy: name, reason: support.reason });
      return createCgroupStrategy({
        ...site,
        forceKillFallback: options.forceCgroupKillFallback === true || !cgroupKillSupported(options),
      });
    }
    case 'pidns':
      return pidnsStrategy;
    case 'pgroup':
      return pgroupStrategy;
  }
}
