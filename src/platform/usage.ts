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
  /** Sum of VmRSS, in bytes (shared pages count once per process, as `ps` shows them). */
  readonly rssBytes: number;
}

function cpuTicks(pid: number): number {
  const text = readProcFile(`/proc/${pid}/stat`);
  // comm may hold spaces and parentheses: the fields after it are fixed.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is state (field 3); utime and stime are fields 14 and 15.
  return Number(fields[11]) + Number(fields[12]);
}

function rssBytes(pid: number): number {
  const match = /\nVmRSS:\s+(\d+) kB/.exec(readProcFile(`/proc/${pid}/status`));
  return match ? Number(match[1]) * 1024 : 0;
}

export function readUsage(pids: readonly number[]): Usage {
  let ticks = 0;
  let rss = 0;
  for (const pid of pids) {
    try {
      ticks += cpuTicks(pid);
      rss += rssBytes(pid);
    } catch {
      // Gone since it was listed.
    }
  }
  return { cpuMs: (ticks * 1000) / CLOCK_TICKS_PER_SECOND, rssBytes: rss };
}
