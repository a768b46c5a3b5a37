/**
 * CPU time and resident memory of a set of processes, from /proc. A process
 * that exits between the listing and the read simply counts for nothing.
 */
import { readProcFile } from './proc-table.js';

/** Linux reports /proc times in USER_HZ, which is 100 on every architecture Node runs on. */
export const CLOCK_TICKS_PER_SECOND = 100;

export interface Usage {
  /** utime + stime of every process, in milliseconds. */
  readonly cpuMs: number;
  /** Sum of resident memory, in bytes (shared pages count once per process, as `ps` shows them). */
  readonly rssBytes: number;
}

let pageSize: number | undefined;

/** The kernel's page size: /proc counts resident memory in pages (4 KiB on x86-64, up to 64 KiB on arm64). */
function systemPageSize(): number {
  if (pageSize === undefined) {
    const pages = Number(readProcFile('/proc/self/statm').split(' ')[1]);
    // Resident bytes over resident pages, rounded to the power of two it must be.
    pageSize = 2 ** Math.round(Math.log2(process.memoryUsage.rss() / pages));
  }
  return pageSize;
}

/** utime + stime (ticks) and rss (pages) from one read of /proc/<pid>/stat. */
function statUsage(pid: number): { ticks: number; pages: number } {
  const text = readProcFile(`/proc/${pid}/stat`);
  // comm may hold spaces and parentheses: the fields after it are fixed.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is state (field 3): utime, stime are fields 14, 15 and rss is field 24.
  return { ticks: Number(fields[11]) + Number(fields[12]), pages: Number(fields[21]) };
}

export function readUsage(pids: readonly number[]): Usage {
  let ticks = 0;
  let rss = 0;
  for (const pid of pids) {
    try {
      const usage = statUsage(pid);
      ticks += usage.ticks;
      rss += usage.pages;
    } catch {
      // Gone since it was listed.
    }
  }
  return { cpuMs: (ticks * 1000) / CLOCK_TICKS_PER_SECOND, rssBytes: rss * (rss === 0 ? 0 : systemPageSize()) };
}
