import { closeSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';
import { MARKER_VARIABLE } from '../core/types.js';

/** One row of the process table, as /proc/<pid>/stat tells it. */
export interface ProcEntry {
  readonly pid: number;
  readonly ppid: number;
  readonly pgid: number;
  readonly sid: number;
  /** R, S, D, Z, T, t, X, I, ... */
  readonly state: string;
  /** Clock ticks after boot at which the process started (field 22): with the boot id, its identity. */
  readonly startTime: number;
  readonly comm: string;
  /** Its main thread has exited but others are still exiting (and may hold its files); its environment is unreadable by now. */
  readonly exiting?: boolean;
  /** utime + stime (fields 14 and 15), in clock ticks; absent from tables that do not know it. */
  readonly cpuTicks?: number;
  /** Resident set size (field 24), in pages; absent from tables that do not know it. */
  readonly rssPages?: number;
}

/**
 * The process table behind a small interface, so the tricky logic (identity,
 * tree membership) can be tested with a fake as well as with real processes.
 * Reads are synchronous: they are small, and the exit path cannot await.
 */
export interface ProcessTable {
  /** The entry for pid, or undefined when no such process exists (zombies are returned). */
  read(pid: number): ProcEntry | undefined;
  /** Every process visible now. */
  list(): ProcEntry[];
  /** The value of tend's marker variable in the process's environment, or undefined. */
  marker(pid: number): string | undefined;
  /** This boot's id: a start time is only comparable within one boot. */
  bootId(): string;
}

/** Parses /proc/<pid>/stat; comm may hold spaces and parentheses, so split after the last ")". */
export function parseProcStat(text: string): ProcEntry | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); field N is rest[N - 3].
  const state = rest[0];
  const startTime = Number(rest[19]);
  if (!Number.isInteger(pid) || state === undefined || !Number.isFinite(startTime)) return undefined;
  return {
    pid,
    state,
    ppid: Number(rest[1]),
    pgid: Number(rest[2]),
    sid: Number(rest[3]),
    startTime,
    comm: text.slice(open + 1, close),
    cpuTicks: Number(rest[11]) + Number(rest[12]),
    rssPages: Number(rest[21]),
  };
}

/** Finds the marker in a NUL-separated environ block. */
export function findMarker(environ: string): string | undefined {
  const key = `${MARKER_VARIABLE}=`;
  let at = environ.startsWith(key) ? 0 : environ.indexOf(`\0${key}`);
  if (at < 0) return undefined;
  if (at > 0) at += 1;
  const end = environ.indexOf('\0', at);
  return environ.slice(at + key.length, end < 0 ? undefined : end);
}

let scratch = Buffer.allocUnsafe(4096);

/**
 * Reads a whole /proc (or cgroupfs) file into one reused buffer. Such files report size 0,
 * which sends readFileSync down its slow unknown-length path; a table scan
 * reads hundreds of them, so this halves its cost.
 */
export function readProcFile(path: string): string {
  const fd = openSync(path, 'r');
  try {
    let length = 0;
    for (;;) {
      if (length === scratch.length) {
        const bigger = Buffer.allocUnsafe(scratch.length * 2);
        scratch.copy(bigger, 0, 0, length);
        scratch = bigger;
      }
      const n = readSync(fd, scratch, length, scratch.length - length, null);
      if (n === 0) break;
      length += n;
    }
    return scratch.toString('latin1', 0, length);
  } finally {
    closeSync(fd);
  }
}

export class ProcfsTable implements ProcessTable {
  #bootId: string | undefined;

  read(pid: number): ProcEntry | undefined {
    let entry: ProcEntry | undefined;
    try {
      entry = parseProcStat(readProcFile(`/proc/${pid}/stat`));
    } catch {
      return undefined;
    }
    // A leader shows Z as soon as its own thread has exited, while the other
    // threads may still be exiting and holding its files (a port, say). The
    // process is gone only when every thread is: report a live thread's state.
    if (entry?.state === 'Z') {
      const live = this.#liveThreadState(pid);
      if (live !== undefined) return { ...entry, state: live, exiting: true };
    }
    return entry;
  }

  #liveThreadState(pid: number): string | undefined {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      return undefined;
    }
    for (const tid of tids) {
      if (tid === String(pid)) continue;
      try {
        const state = parseProcStat(readProcFile(`/proc/${pid}/task/${tid}/stat`))?.state;
        if (state !== undefined && state !== 'Z' && state !== 'X' && state !== 'x') return state;
      } catch {
        /* that thread is gone */
      }
    }
    return undefined;
  }

  list(): ProcEntry[] {
    const entries: ProcEntry[] = [];
    for (const name of readdirSync('/proc')) {
      const code = name.charCodeAt(0);
      if (code < 48 || code > 57) continue;
      const entry = this.read(Number(name));
      if (entry) entries.push(entry);
    }
    return entries;
  }

  marker(pid: number): string | undefined {
    try {
      return findMarker(readProcFile(`/proc/${pid}/environ`));
    } catch {
      return undefined;
    }
  }

  bootId(): string {
    this.#bootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
    return this.#bootId;
  }
}

let shared: ProcessTable | undefined;

/** The real process table of this machine. */
export function systemProcessTable(): ProcessTable {
  shared ??= new ProcfsTable();
  return shared;
}
