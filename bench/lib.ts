/**
 * Shared helpers for the benchmarks: statistics, Markdown tables, /proc
 * scanning and leak checks. Benchmarks print ratios against a baseline
 * measured in the same run; nothing here asserts a timing.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MARKER = 'TEND_ID';

/** The cgroup2 mount point (from /proc/self/mountinfo), or undefined. */
export function cgroup2Mount(): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep >= 0 && line.slice(sep + 3).startsWith('cgroup2 ')) return line.slice(0, sep).split(' ')[4];
  }
  return undefined;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function min(values: readonly number[]): number {
  return values.length ? Math.min(...values) : NaN;
}

export function max(values: readonly number[]): number {
  return values.length ? Math.max(...values) : NaN;
}

export function fmt(n: number, digits = 2): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '—';
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

/** Rotates `items` left by `by`: round r starts with item r, so every item is first, middle and last in turn. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  const n = items.length;
  const k = ((by % n) + n) % n;
  return [...items.slice(k), ...items.slice(0, k)];
}

export interface StatLine {
  readonly pid: number;
  readonly ppid: number;
  readonly pgid: number;
  readonly state: string;
  readonly startTime: number;
  readonly comm: string;
}

export function readStat(pid: number): StatLine | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const rest = text.slice(close + 2).split(' ');
  return {
    pid,
    state: rest[0] ?? '?',
    ppid: Number(rest[1]),
    pgid: Number(rest[2]),
    startTime: Number(rest[19]),
    comm: text.slice(open + 1, close),
  };
}

export function isAlive(s: StatLine | undefined): s is StatLine {
  return s !== undefined && s.state !== 'Z' && s.state !== 'X' && s.state !== 'x';
}

export function procPids(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0);
    if (c >= 48 && c <= 57) pids.push(Number(name));
  }
  return pids;
}

export function zombieCount(): number {
  let n = 0;
  for (const pid of procPids()) if (readStat(pid)?.state === 'Z') n++;
  return n;
}

/** The marker value in /proc/<pid>/environ, or undefined. */
export function markerOf(pid: number): string | undefined {
  let env: string;
  try {
    env = readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return undefined;
  }
  const key = `${MARKER}=`;
  let at = env.startsWith(key) ? 0 : env.indexOf(`\0${key}`);
  if (at < 0) return undefined;
  if (at > 0) at += 1;
  const end = env.indexOf('\0', at);
  return env.slice(at + key.length, end < 0 ? undefined : end);
}

/** Live (non-zombie) processes whose environment carries the marker, optionally a given value. */
export function markedProcesses(value?: string): StatLine[] {
  const found: StatLine[] = [];
  for (const pid of procPids()) {
    if (pid === process.pid) continue;
    const m = markerOf(pid);
    if (m === undefined || (value !== undefined && m !== value)) continue;
    const s = readStat(pid);
    if (isAlive(s)) found.push(s);
  }
  return found;
}

/** Live processes among `members` (pid + start time, so a recycled pid does not count). */
export function liveAmong(members: readonly { pid: number; startTime: number }[]): number {
  let n = 0;
  for (const m of members) {
    const s = readStat(m.pid);
    if (isAlive(s) && s.startTime === m.startTime) n++;
  }
  return n;
}

export function anyLiveAmong(members: readonly { pid: number; startTime: number }[]): boolean {
  for (const m of members) {
    const s = readStat(m.pid);
    if (isAlive(s) && s.startTime === m.startTime) return true;
  }
  return false;
}

/** Child cgroup directories of `dir` (names only). */
export function childCgroups(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

/** Removes an (empty) cgroup directory tree, deepest first; returns what could not be removed. */
export function removeCgroupTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const failed: string[] = [];
  for (const name of childCgroups(dir)) failed.push(...removeCgroupTree(join(dir, name)));
  try {
    rmdirSync(dir);
  } catch (error) {
    failed.push(`${dir} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return failed;
}

/** Blocks the thread for `ms` (sub-millisecond allowed): for tight raw polling loops. */
const sleeper = new Int32Array(new SharedArrayBuffer(4));
export function blockFor(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * What this benchmark process started, so the leak check looks at its own
 * trees only (other programs on the machine may run tend too): the handle ids
 * of tracked managers, and the marker values given to raw trees.
 */
const ownIds = new Set<string>();
export const rawMarkerPrefix = `bench-raw-${process.pid}-`;

export function track(manager: { on(event: 'start', listener: (handle: { id: string }) => void): unknown }): void {
  manager.on('start', (handle) => ownIds.add(handle.id));
}

export function benchCgroupDir(): string | undefined {
  const mount = cgroup2Mount();
  return mount ? join(mount, `tend-bench-${process.pid}`) : undefined;
}

/** Processes and cgroups this benchmark process created that still exist. */
export function leftovers(tendCgroupParent: string | undefined): { processes: StatLine[]; cgroups: string[] } {
  const processes: StatLine[] = [];
  for (const pid of procPids()) {
    if (pid === process.pid) continue;
    const m = markerOf(pid);
    if (m === undefined || !(ownIds.has(m) || m.startsWith(rawMarkerPrefix))) continue;
    const s = readStat(pid);
    if (isAlive(s)) processes.push(s);
  }
  const cgroups: string[] = [];
  const bench = benchCgroupDir();
  if (bench && existsSync(bench)) cgroups.push(bench);
  if (tendCgroupParent) for (const name of childCgroups(tendCgroupParent)) if (ownIds.has(name)) cgroups.push(join(tendCgroupParent, name));
  return { processes, cgroups };
}

export function describeLeftovers({ processes, cgroups }: { processes: StatLine[]; cgroups: string[] }): string {
  const procs = processes.length ? processes.map((p) => `${p.pid}(${p.comm})`).join(' ') : 'none';
  const dirs = cgroups.length ? cgroups.join(' ') : 'none';
  return `Left behind by this benchmark: processes ${procs}; cgroups ${dirs}`;
}

export function leftoverReport(tendCgroupParent: string | undefined): string {
  return describeLeftovers(leftovers(tendCgroupParent));
}

/** True when this module's file is the program node was started with. */
export function isMain(importMetaUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && fileURLToPath(importMetaUrl) === entry;
}

/** Path of the repository root, from dist/bench/<file>.js. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Holds the event loop open while a benchmark awaits tend. With the cgroup
 * strategy, tend waits for "populated 0" on an unreferenced watcher and timer:
 * if nothing else is pending when the direct child is reaped, node would exit
 * before stop()/wait() settles.
 */
export function keepAlive(): () => void {
  const timer = setInterval(() => undefined, 60_000);
  return () => clearInterval(timer);
}

/** What a command run to its end printed, how it ended, and how long it took. */
export interface Timed {
  readonly ms: number;
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a whole command (its start included) and times it. */
export function timed(file: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd?: string, timeoutMs = 600_000): Timed {
  const t0 = performance.now();
  const r = spawnSync(file, args, { env, cwd, encoding: 'utf8', maxBuffer: 512 * 1024 * 1024, timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  return { ms: performance.now() - t0, status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** The environment as users run Node: without the CA file this machine adds (~80 ms to every node start). */
export function withoutExtraCa(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy.NODE_EXTRA_CA_CERTS;
  return copy;
}

export function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return (lines[lines.length - 1] ?? '').slice(0, 300);
}

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}
