import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { TendError } from '../core/errors.js';
import type { StrategyChoice, StrategyName } from '../core/types.js';
import { hasCgroupKill, locateCgroup2, probeCgroupParent } from './cgroup.js';
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
const cache = new Map<string, Capabilities>();

/** Says which containment strategies this machine offers and, for each one it does not, why. Probes for real; cached. */
export function detect(options: DetectOptions = {}): Capabilities {
  const key = `${options.cgroupParent ?? ''}|${options.portable === true}`;
  const known = cache.get(key);
  if (known) return known;
  const location = isLinux ? locateCgroup2() : undefined;
  const parent = options.cgroupParent ?? (location ? defaultCgroupParent(location.mount, location.own) : undefined);
  const cgroup = detectCgroup(location?.mount, parent, options.portable === true);
  const strategies: Record<StrategyName, StrategySupport> = {
    cgroup,
    pidns: detectPidns(options.portable === true),
    pgroup: isPosix
      ? { available: true, reason: 'own session and process group; escaped descendants found by the TEND_ID marker' }
      : { available: false, reason: `process groups are POSIX-only (this is ${platformName})` },
  };
  const caps: Capabilities = {
    platform: platformName,
    strategies,
    best: order.find((s) => strategies[s].available),
    parentDeathSignal: isLinux
      ? parentDeathSignalSupport(options.portable === true)
      : { available: false, via: 'none', reason: `parent-death signals are Linux-only (this is ${platformName})` },
    cgroup:
      location && parent && cgroup.available
        ? { mount: location.mount, parent, cgroupKill: hasCgroupKill(join(location.mount, location.own === '/' ? '' : location.own)) || kernelHasCgroupKill(parent) }
        : undefined,
  };
  cache.set(key, caps);
  return caps;
}

export function defaultCgroupParent(mount: string, own: string): string {
  return join(mount, own, 'tend');
}

function kernelHasCgroupKill(parent: string): boolean {
  // The root cgroup has no cgroup.kill; a child of ours tells for sure.
  const probe = join(parent, `kill-probe-${process.pid}`);
  try {
    mkdirSync(probe);
    try {
      return hasCgroupKill(probe);
    } finally {
      rmdirSync(probe);
    }
  } catch {
    return false;
  }
}

function detectCgroup(mount: string | undefined, parent: string | undefined, portable: boolean): StrategySupport {
  if (!isLinux) return { available: false, reason: `cgroups are Linux-only (this is ${platformName})` };
  if (!mount || !parent) return { available: false, reason: 'no cgroup v2 filesystem is mounted (see /proc/self/mountinfo)' };
  const probe = probeCgroupParent(parent);
  if (!probe.ok) return { available: false, reason: probe.reason };
  const shim = portable ? undefined : locateNativeHelper('tend-shim').path;
  if (shim) {
    // Moving a process can still fail where creating a cgroup did not (the
    // "no internal processes" rule, or a delegation boundary): join for real.
    const dir = join(parent, `join-probe-${process.pid}`);
    try {
      mkdirSync(dir);
      const run = spawnSync(shim, ['-c', join(dir, 'cgroup.procs'), '--', '/bin/sh', 'sh', '-c', 'exit 0'], { stdio: ['ignore', 'ignore', 'pipe'], env: {} });
      if (run.status !== 0) return { available: false, reason: `cannot move a process into ${dir}: ${run.stderr.toString().trim() || `exit ${run.status}`}` };
    } finally {
      if (existsSync(dir)) rmdirSync(dir);
    }
  }
  return { available: true, reason: `cgroup v2 at ${mount}; each tree gets its own cgroup under ${parent}, joined before exec` };
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
  const caps = detect(options);
  const name = choice === 'auto' ? caps.best : choice;
  if (name === undefined) {
    throw new TendError('STRATEGY_UNAVAILABLE', { strategy: 'auto', reason: order.map((s) => `${s}: ${caps.strategies[s].reason}`).join('; ') });
  }
  const support = caps.strategies[name];
  if (!support.available) throw new TendError('STRATEGY_UNAVAILABLE', { strategy: name, reason: support.reason });
  switch (name) {
    case 'cgroup': {
      const cg = caps.cgroup;
      if (!cg) throw new TendError('STRATEGY_UNAVAILABLE', { strategy: name, reason: support.reason });
      return createCgroupStrategy({
        mount: cg.mount,
        parent: cg.parent,
        forceKillFallback: options.forceCgroupKillFallback === true || !cg.cgroupKill,
      });
    }
    case 'pidns':
      return pidnsStrategy;
    case 'pgroup':
      return pgroupStrategy;
  }
}
