/**
 * CPU time and resident memory of a set of processes, from /proc. A process
 * that exits between the listing and the read simply counts for nothing.
 */
import { parseProcStat, readProcFile, type ProcEntry } from './proc-table.js';

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

/** The usage of processes whose table entries were read already: no further read of /proc. */
export function usageOfEntries(entries: readonly ProcEntry[]): Usage {
  let ticks = 0;
  let rss = 0;
  for (const entry of entries) {
    ticks += entry.cpuTicks ?? 0;
    rss += entry.rssPages ?? 0;
  }
  return { cpuMs: (ticks * 1000) / CLOCK_TICKS_PER_SECOND, rssBytes: rss * (rss === 0 ? 0 : systemPageSize()) };
}

/** The usage of `pids`, from one read of each one's /proc/<pid>/stat. */
export function readUsage(pids: readonly number[]): Usage {
  const entries: ProcEntry[] = [];
  for (const pid of pids) {
    try {
      const entry = parseProcStat(readProcFile(`/proc/${pid}/stat`));
      if (entry) entries.push(entry);
    } catch {
      // Gone since it was listed.
    }
  }
  return usageOfEntries(entries);
}
