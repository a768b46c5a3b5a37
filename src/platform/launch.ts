import { accessSync, constants } from 'node:fs';
import { TendError } from '../core/errors.js';
import type { NormalizedSpec } from '../core/types.js';
import { locateNativeHelper } from './native.js';

export interface ShimOptions {
  /** Arm PR_SET_PDEATHSIG(SIGKILL) on the direct child, checked against our pid. */
  readonly parentDeathSignal: boolean;
  /** A cgroup.procs file the child writes itself into before exec. */
  readonly cgroupProcs?: string | undefined;
  /** Use the portable fallback (sh, setpriv) even when the native shim exists. */
  readonly portable?: boolean | undefined;
  /** The child's whole environment, marker included: the portable cgroup join must carry it past the shell. */
  readonly env?: Readonly<Record<string, string>> | undefined;
}

const SIGKILL = '9';
let setprivPath: string | null | undefined;

function findSetpriv(): string | undefined {
  if (setprivPath === undefined) {
    setprivPath = null;
    for (const candidate of ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv', '/sbin/setpriv']) {
      try {
        accessSync(candidate, constants.X_OK);
        setprivPath = candidate;
        break;
      } catch {
        /* try the next one */
      }
    }
  }
  return setprivPath ?? undefined;
}

/** Whether a parent-death signal can be armed on this machine, and how. */
export function parentDeathSignalSupport(portable = false): { available: boolean; via: string; reason: string } {
  const shim = locateNativeHelper('tend-shim');
  if (!portable && shim.path) return { available: true, via: 'tend-shim', reason: 'armed by tend-shim before exec, checked against the manager pid' };
  const setpriv = findSetpriv();
  if (setpriv) return { available: true, via: 'setpriv', reason: `armed by ${setpriv} --pdeathsig` };
  return { available: false, via: 'none', reason: `${shim.reason ?? 'portable mode'}; and setpriv (util-linux) is not installed` };
}

/**
 * How to launch the user's command so that, before its first instruction runs,
 * it is in its cgroup and armed with a parent-death signal. The native shim
 * does both and then exec()s the command (same pid, same environment). Without
 * it, /bin/sh does the cgroup join (`echo 0 > cgroup.procs` moves the shell
 * itself; the command is passed as positional arguments, never as script text)
 * and setpriv arms the parent-death signal. A shell rewrites the environment
 * it passes on (it adds PWD and drops names that are not shell identifiers),
 * so the environment goes to `env -i` as NAME=VALUE arguments instead.
 */
export function shimPlan(spec: NormalizedSpec, options: ShimOptions): { file: string; args: string[]; argv0: string; statusFd: false } {
  const needsShim = options.parentDeathSignal || options.cgroupProcs !== undefined;
  if (!needsShim) return { file: spec.file, args: [...spec.args], argv0: spec.command, statusFd: false };
  const shim = options.portable ? undefined : locateNativeHelper('tend-shim').path;
  if (shim) {
    const args: string[] = [];
    if (options.parentDeathSignal) args.push('-s', SIGKILL, '-p', String(process.pid));
    if (options.cgroupProcs !== undefined) args.push('-c', options.cgroupProcs);
    args.push('--', spec.file, spec.command, ...spec.args);
    return { file: shim, args, argv0: 'tend-shim', statusFd: false };
  }
  let chain: string[] = [spec.file, ...spec.args];
  if (options.cgroupProcs !== undefined) {
    if (spec.file.includes('=')) {
      throw new TendError('CONTAINMENT_FAILED', {
        strategy: 'cgroup',
        reason: `the portable cgroup join runs the command through env(1), which would read ${JSON.stringify(spec.file)} as a variable assignment`,
        fix: 'Rename the program, build the native helpers (a C compiler at install), or use strategy "pgroup".',
      });
    }
    const assignments = Object.entries(options.env ?? spec.env).map(([k, v]) => `${k}=${v}`);
    chain = ['/bin/sh', '-c', 'echo 0 > "$0" && exec /usr/bin/env -i "$@"', options.cgroupProcs, ...assignments, ...chain];
  }
  const setpriv = options.parentDeathSignal ? findSetpriv() : undefined;
  if (setpriv) chain = [setpriv, '--pdeathsig', 'KILL', '--', ...chain];
  const [file, ...args] = chain as [string, ...string[]];
  return { file, args, argv0: file, statusFd: false };
}
