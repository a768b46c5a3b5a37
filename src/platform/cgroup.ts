import { watch, existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, statSync, writeFileSync, accessSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { errnoOf } from '../core/errors.js';
import { readProcFile, systemProcessTable } from './proc-table.js';
import { sendSignal } from './signal.js';

/** Where the cgroup v2 hierarchy is mounted and where this process sits in it. */
export interface Cgroup2Location {
  /** Mount point of the cgroup2 filesystem (e.g. /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts). */
  readonly mount: string;
  /** This process's cgroup, relative to the mount ("/" for the root). */
  readonly own: string;
}

/** Finds the cgroup2 mount in /proc/self/mountinfo and our place in it from /proc/self/cgroup. */
export function locateCgroup2(): Cgroup2Location | undefined {
  let mount: string | undefined;
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      // fields: id parent major:minor root mountpoint options [optional...] - fstype source superopts
      const sep = line.indexOf(' - ');
      if (sep < 0 || !line.slice(sep + 3).startsWith('cgroup2 ')) continue;
      mount = unescapeMountPath(line.slice(0, sep).split(' ')[4] ?? '');
      break;
    }
    if (!mount) return undefined;
    const unified = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    if (unified === undefined) return undefined;
    return { mount, own: unified.slice(3) || '/' };
  } catch {
    return undefined;
  }
}

function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Live member pids of a cgroup and every cgroup below it. */
export function readCgroupMembers(dir: string): number[] {
  const pids: number[] = [];
  const walk = (d: string): void => {
    let text: string;
    try {
      text = readProcFile(join(d, 'cgroup.procs'));
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return;
      throw error;
    }
    for (const line of text.split('\n')) if (line) pids.push(Number(line));
    // cgroupfs counts a directory's subdirectories in its link count (2 + children), so a leaf, the
    // usual case, needs no listing. A child made after this check is missed, as after a listing.
    if (statSync(d).nlink === 2) return;
    for (const entry of readdirSync(d, { withFileTypes: true })) if (entry.isDirectory()) walk(join(d, entry.name));
  };
  walk(dir);
  return pids;
}

/** Whether any live process is in the cgroup or below it ("populated" in cgroup.events; zombies do not count). */
export function isCgroupPopulated(dir: string): boolean {
  let events: string;
  try {
    events = readFileSync(join(dir, 'cgroup.events'), 'latin1');
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return false;
    throw error;
  }
  return /^populated 1$/m.test(events);
}

/** Creates a tree's cgroup; its parent may need creating, the leaf must be new (EEXIST means another tree has it). */
export function createCgroup(dir: string): void {
  mkdirSync(dirname(dir), { recursive: true });
  mkdirSync(dir);
}

export function hasCgroupKill(dir: string): boolean {
  return existsSync(join(dir, 'cgroup.kill'));
}

/**
 * SIGKILLs every process in the cgroup and below it. cgroup.kill (Linux 5.14+)
 * does it atomically, forks included. Without it, freeze the cgroup so nobody
 * can fork or exit while we read and kill, kill each member, then thaw so the
 * kernel delivers the SIGKILLs.
 * Returns false when the cgroup was already empty or gone.
 */
export function killCgroup(dir: string, forceFallback = false): boolean {
  if (!isCgroupPopulated(dir)) return false;
  if (!forceFallback && hasCgroupKill(dir)) {
    writeFileSync(join(dir, 'cgroup.kill'), '1');
    return true;
  }
  const freeze = join(dir, 'cgroup.freeze');
  const canFreeze = existsSync(freeze);
  if (canFreeze) writeFileSync(freeze, '1');
  try {
    // Through the one signalling function: a frozen member cannot exit, so its listed pid stays its own.
    sendSignal(systemProcessTable(), { kind: 'cgroup', dir, pids: readCgroupMembers(dir) }, 'SIGKILL');
  } finally {
    if (canFreeze) writeFileSync(freeze, '0');
  }
  return true;
}

/**
 * Resolves once the cgroup has no live member. Watches cgroup.events (the
 * kernel notifies on every change of "populated"); the watch is armed before
 * the first read, so a change between the two cannot be missed. Notifications
 * can be coalesced away, so a poll backs the watch up, backing off from 1 ms
 * to 25 ms. Both keep the event loop alive: a caller awaiting a tree's end
 * must not see its program exit first.
 */
export async function waitCgroupEmpty(dir: string, signal?: AbortSignal): Promise<void> {
  if (!isCgroupPopulated(dir)) return;
  await new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let interval = 1;
    let watcher: ReturnType<typeof watch> | undefined;
    const done = (error?: unknown): void => {
      watcher?.close();
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (error === undefined) resolve();
      else reject(error instanceof Error ? error : new Error('waiting for the cgroup to empty was aborted', { cause: error }));
    };
    const check = (): boolean => {
      try {
        if (isCgroupPopulated(dir)) return false;
        done();
      } catch (error) {
        done(error);
      }
      return true;
    };
    const poll = (): void => {
      if (check()) return;
      interval = Math.min(interval * 2, 25);
      timer = setTimeout(poll, interval);
    };
    const onAbort = (): void => done(signal?.reason);
    try {
      watcher = watch(join(dir, 'cgroup.events'), check);
      watcher.on('error', () => undefined);
    } catch {
      watcher = undefined;
    }
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    poll();
  });
}

/** Removes an empty cgroup and its empty children; returns whether it did (false when still populated or already gone). */
export function maybeRemoveCgroup(dir: string): boolean {
  try {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) maybeRemoveCgroup(join(dir, entry.name));
    }
    rmdirSync(dir);
    return true;
  } catch (error) {
    const errno = errnoOf(error);
    if (errno === 'ENOENT' || errno === 'EBUSY' || errno === 'ENOTEMPTY') return false;
    throw error;
  }
}

export type CgroupProbe = { ok: true; cgroupKill: boolean } | { ok: false; reason: string };

/**
 * Whether this process may create cgroups under `parent` and move processes
 * into them. Moving needs write access to cgroup.procs of the destination and
 * of the common ancestor of source and destination (here: our own cgroup, or
 * the mount root when `parent` is elsewhere). Checked on a real probe cgroup,
 * which also tells whether the kernel has cgroup.kill (5.14+).
 */
export function probeCgroupParent(parent: string, ancestor: string): CgroupProbe {
  try {
    mkdirSync(parent, { recursive: true });
    removeStaleProbes(parent);
    const probe = join(parent, `probe-${process.pid}-${Date.now()}`);
    mkdirSync(probe);
    try {
      if (!existsSync(join(probe, 'cgroup.events'))) return { ok: false, reason: `${probe} has no cgroup.events (not a cgroup v2 directory)` };
      accessSync(join(probe, 'cgroup.procs'), constants.W_OK);
      accessSync(join(ancestor, 'cgroup.procs'), constants.W_OK);
      return { ok: true, cgroupKill: hasCgroupKill(probe) };
    } finally {
      rmdirSync(probe);
    }
  } catch (error) {
    const errno = errnoOf(error);
    const why = errno === 'EACCES' || errno === 'EPERM' ? 'permission denied (cgroup v2 needs root or a delegated subtree)' : (error as Error).message;
    return { ok: false, reason: `cannot create cgroups under ${parent} and move processes into them: ${why}` };
  }
}

/** A process killed mid-probe leaves its empty probe cgroup behind: remove those of dead processes. */
function removeStaleProbes(parent: string): void {
  for (const name of readdirSync(parent)) {
    const pid = Number(/^probe-(\d+)-\d+$/.exec(name)?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (error) {
      if (errnoOf(error) === 'ESRCH') maybeRemoveCgroup(join(parent, name));
    }
  }
}
