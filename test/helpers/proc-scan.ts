// The tests' one look at /proc: processes by the marker variable in their
// environment, by any variable, by their stat. Straight from /proc, not
// through tend's own process table: the leak checks in the tests must not
// trust tend's own bookkeeping, and a bug there must not hide a leak.
import { readFileSync, readdirSync } from 'node:fs';

export const MARKER = 'TEND_ID';

/** Which processes to find: `variable` (default TEND_ID) equal to `value`, or starting with `prefix`. */
export interface MarkerMatch {
  readonly variable?: string;
  readonly value?: string;
  readonly prefix?: string;
}

export interface MarkedProcess {
  readonly pid: number;
  readonly ppid: number;
  readonly pgid: number;
  readonly sid: number;
  /** Field 3 of /proc/<pid>/stat: R, S, D, T, ...; Z only for a leader whose other threads still run. */
  readonly state: string;
  /** Field 22 of /proc/<pid>/stat: with the pid, what makes this process this one. */
  readonly startTime: number;
  readonly comm: string;
  readonly cmdline: string;
  /** The value of the matched variable. */
  readonly value: string;
}

function variableOf(environ: string, variable: string): string | undefined {
  const key = `${variable}=`;
  for (const entry of environ.split('\0')) if (entry.startsWith(key)) return entry.slice(key.length);
  return undefined;
}

function matches(value: string | undefined, match: MarkerMatch): value is string {
  if (value === undefined) return false;
  if (match.value !== undefined && value !== match.value) return false;
  if (match.prefix !== undefined && !value.startsWith(match.prefix)) return false;
  return true;
}

/** The fields of /proc/<pid>/stat the tests look at. */
export interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  readonly pgid: number;
  readonly sid: number;
  /** Field 3: R, S, D, T, Z, ... */
  readonly state: string;
  /** Field 22: with the pid, what makes this process this one. */
  readonly startTime: number;
  readonly comm: string;
}

/** A process as a record names it: pid, start time, parent, group, state. */
export type ProcIdentity = Pick<ProcStat, 'pid' | 'ppid' | 'pgid' | 'state' | 'startTime'>;

/** Reads /proc/<pid>/stat; undefined when there is no such process. */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // comm may contain spaces and parentheses: the fields start after the last ")".
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const rest = text.slice(close + 2).split(' ');
  return {
    pid,
    state: rest[0] ?? '?',
    startTime: Number(rest[19]),
    ppid: Number(rest[1]),
    pgid: Number(rest[2]),
    sid: Number(rest[3]),
    comm: text.slice(open + 1, close),
  };
}

/** pid, start time and process group of a process; undefined when there is none. */
export function procIdentity(pid: number): ProcIdentity | undefined {
  const stat = readProcStat(pid);
  return stat && { pid, ppid: stat.ppid, pgid: stat.pgid, state: stat.state, startTime: stat.startTime };
}

/** Gone: absent, or a zombie (no code left to run). */
export function isGone(pid: number): boolean {
  return isDeadState(readProcStat(pid)?.state);
}

/** Whether (pid, startTime) is still a process with code left to run (a zombie is not; its threads are not looked at). */
export function isAlive(pid: number, startTime: number): boolean {
  const stat = readProcStat(pid);
  return stat !== undefined && stat.startTime === startTime && !isDeadState(stat.state);
}

/** The pids in /proc now, this process's own excluded. */
function listPids(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    const code = name.charCodeAt(0);
    if (code < 48 || code > 57) continue;
    const pid = Number(name);
    if (pid !== process.pid) pids.push(pid);
  }
  return pids;
}

const isDeadState = (state: string | undefined): boolean => state === undefined || state === 'Z' || state === 'X' || state === 'x';

function threadStates(pid: number): string[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tasks.flatMap((tid) => {
    const stat = readStatOfTask(pid, tid);
    return stat ? [stat] : [];
  });
}

function readStatOfTask(pid: number, tid: string): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/**
 * Whether a process has code left to run. A zombie (Z, X) has none and is
 * "gone" for tend, with one exception: in a multi-threaded program the first
 * thread can already be a zombie while the others are still exiting, and
 * until the last one has, the program's files (its listening socket) stay
 * open. /proc/<pid>/stat shows the first thread only, so the threads are read.
 */
function hasLiveThread(pid: number, state: string): boolean {
  if (!isDeadState(state)) return true;
  return threadStates(pid).some((s) => !isDeadState(s));
}

/** Whether the process seen earlier as (pid, startTime) is still alive: same start time, and some thread not dead. */
export function isStillAlive(pid: number, startTime: number): boolean {
  const stat = readProcStat(pid);
  if (!stat || stat.startTime !== startTime) return false;
  return hasLiveThread(pid, stat.state);
}

/**
 * Every live process whose environment matches. Zombies are skipped (see
 * hasLiveThread for the one exception). The caller's own process is never
 * returned. A process that is exiting may already have lost its environment
 * (the kernel frees it before the files): pass what was seen earlier to
 * survivorsOf to catch those too.
 */
export function findMarked(match: MarkerMatch): MarkedProcess[] {
  if (match.value === undefined && match.prefix === undefined) throw new Error('findMarked needs a value or a prefix');
  const variable = match.variable ?? MARKER;
  const found: MarkedProcess[] = [];
  for (const pid of listPids()) {
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue; // exited while we looked, or a kernel thread
    }
    const value = variableOf(environ, variable);
    if (!matches(value, match)) continue;
    const stat = readProcStat(pid);
    if (!stat || !hasLiveThread(pid, stat.state)) continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ').trim();
    } catch {
      /* exited while we looked: still reported, it was alive a moment ago */
    }
    found.push({ ...stat, cmdline, value });
  }
  return found;
}

/**
 * The live processes carrying TEND_ID=<id>, plus any of `seen` (found with
 * the marker earlier) that is still alive without it being readable now.
 */
export function survivorsOf(id: string, seen: readonly MarkedProcess[] = []): MarkedProcess[] {
  const found = findMarked({ value: id });
  const pids = new Set(found.map((p) => p.pid));
  for (const p of seen) {
    if (!pids.has(p.pid) && isStillAlive(p.pid, p.startTime)) found.push({ ...p, state: readProcStat(p.pid)?.state ?? p.state, cmdline: `${p.cmdline} (exiting: environment gone, a thread still runs)` });
  }
  return found;
}

/** One line per process, for assertion messages. */
export function describeProcesses(processes: readonly MarkedProcess[]): string {
  if (processes.length === 0) return '(none)';
  return processes.map((p) => `  pid ${p.pid} ppid ${p.ppid} pgid ${p.pgid} sid ${p.sid} ${p.state} ${p.cmdline || p.comm}`).join('\n');
}

export interface ProcInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly state: string;
  readonly env: ReadonlyMap<string, string>;
  /** The arguments joined by spaces, for matching and messages. */
  readonly cmdline: string;
  /** The arguments as the kernel holds them. */
  readonly argv: readonly string[];
}

/** Parses an environ block (NUL-separated NAME=VALUE) into a map; the first of duplicate names wins, as getenv does. */
export function parseEnviron(block: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of block.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const name = entry.slice(0, eq);
    if (!env.has(name)) env.set(name, entry.slice(eq + 1));
  }
  return env;
}

function readProcInfo(pid: number): ProcInfo | undefined {
  const stat = readProcStat(pid);
  if (!stat) return undefined;
  try {
    const environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    const argv = raw.split('\0');
    if (argv.at(-1) === '') argv.pop();
    return { pid, ppid: stat.ppid, state: stat.state, env: parseEnviron(environ), cmdline: argv.join(' ').trim(), argv };
  } catch {
    return undefined; // gone while we looked
  }
}

/** Every process visible in /proc except this one. Zombies are included unless `live` is set. */
export function scanProcesses(options: { live?: boolean } = {}): ProcInfo[] {
  const found: ProcInfo[] = [];
  for (const pid of listPids()) {
    const info = readProcInfo(pid);
    if (!info) continue;
    if (options.live && isDeadState(info.state)) continue;
    found.push(info);
  }
  return found;
}

/** Live (non-zombie) processes whose environment has `name=value`. */
export function processesWithEnv(name: string, value: string): ProcInfo[] {
  return scanProcesses({ live: true }).filter((p) => p.env.get(name) === value);
}

/** SIGKILLs every process whose environment has `name=value`; returns their pids. */
export function killProcessesWithEnv(name: string, value: string): number[] {
  const pids: number[] = [];
  for (const p of scanProcesses().filter((q) => q.env.get(name) === value)) {
    try {
      process.kill(p.pid, 'SIGKILL');
      pids.push(p.pid);
    } catch {
      /* already gone */
    }
  }
  return pids;
}
