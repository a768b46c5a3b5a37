// Finds processes by the marker variable in their environment, straight from
// /proc: the leak checks in the tests must not trust tend's own bookkeeping.
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

interface Stat {
  readonly startTime: number;
  readonly ppid: number;
  readonly pgid: number;
  readonly sid: number;
  readonly state: string;
  readonly comm: string;
}

function readStat(pid: number): Stat | undefined {
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
    state: rest[0] ?? '?',
    startTime: Number(rest[19]),
    ppid: Number(rest[1]),
    pgid: Number(rest[2]),
    sid: Number(rest[3]),
    comm: text.slice(open + 1, close),
  };
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
  const stat = readStat(pid);
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
  for (const name of readdirSync('/proc')) {
    const code = name.charCodeAt(0);
    if (code < 48 || code > 57) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue; // exited while we looked, or a kernel thread
    }
    const value = variableOf(environ, variable);
    if (!matches(value, match)) continue;
    const stat = readStat(pid);
    if (!stat || !hasLiveThread(pid, stat.state)) continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ').trim();
    } catch {
      /* exited while we looked: still reported, it was alive a moment ago */
    }
    found.push({ pid, ...stat, cmdline, value });
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
    if (!pids.has(p.pid) && isStillAlive(p.pid, p.startTime)) found.push({ ...p, state: readStat(p.pid)?.state ?? p.state, cmdline: `${p.cmdline} (exiting: environment gone, a thread still runs)` });
  }
  return found;
}

/** One line per process, for assertion messages. */
export function describeProcesses(processes: readonly MarkedProcess[]): string {
  if (processes.length === 0) return '(none)';
  return processes.map((p) => `  pid ${p.pid} ppid ${p.ppid} pgid ${p.pgid} sid ${p.sid} ${p.state} ${p.cmdline || p.comm}`).join('\n');
}
