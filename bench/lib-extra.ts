/**
 * Helpers shared by the manager-kill, reaper-cost and recovery benchmarks:
 * percentiles, process identities, /proc/<pid>/status, temporary state
 * directories and line-by-line reading of a child's stdout.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fmt, isAlive, lastLine, readStat, sleep, type Timed } from './lib.js';

/** Nearest-rank percentile (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] as number;
}

export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}

export function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
}

export interface Identity {
  readonly pid: number;
  readonly startTime: number;
}

/** The identity of a live process, or undefined. */
export function identityOf(pid: number): Identity | undefined {
  const s = readStat(pid);
  return isAlive(s) ? { pid, startTime: s.startTime } : undefined;
}

/** True while the process with this identity is alive (a zombie is gone). */
export function stillAlive(id: Identity): boolean {
  const s = readStat(id.pid);
  return isAlive(s) && s.startTime === id.startTime;
}

/** SIGKILLs the process only while it is still the one named (pid and start time). */
export function killIdentity(id: Identity): boolean {
  if (!stillAlive(id)) return false;
  try {
    process.kill(id.pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/** Polls `done` every `intervalMs` until true or `timeoutMs` passes; returns whether it became true. */
export async function waitUntil(done: () => boolean, timeoutMs: number, intervalMs = 5): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (done()) return true;
    if (performance.now() > deadline) return false;
    await sleep(intervalMs);
  }
}

/** Fields of /proc/<pid>/status measured in kB (VmRSS, RssAnon, ...), in kB. */
export function memoryStatus(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (m) out[m[1] as string] = Number(m[2]);
  }
  return out;
}

/** A fresh private directory under the system temp dir (mode 0700, as tend wants its state directory). */
export function tempDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `tend-bench-${tag}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Reads a child's stdout line by line; `next(timeoutMs)` resolves with the next line or rejects. */
export function lineReader(child: ChildProcess): { next(timeoutMs: number): Promise<string> } {
  const queue: string[] = [];
  const waiters: ((line: string | undefined) => void)[] = [];
  let buffer = '';
  let ended = false;
  const push = (line: string | undefined): void => {
    const w = waiters.shift();
    if (w) w(line);
    else if (line !== undefined) queue.push(line);
  };
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    buffer += chunk;
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      push(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
  });
  child.stdout?.on('end', () => {
    ended = true;
    while (waiters.length) push(undefined);
  });
  return {
    next(timeoutMs: number): Promise<string> {
      const queued = queue.shift();
      if (queued !== undefined) return Promise.resolve(queued);
      if (ended) return Promise.reject(new Error('stdout ended'));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`no line within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = (line: string | undefined): void => {
          clearTimeout(timer);
          if (line === undefined) reject(new Error('stdout ended'));
          else resolve(line);
        };
        waiters.push(waiter);
      });
    },
  };
}

/** Resolves once the child has exited (immediately if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/** `tend kill-all`, then `tend daemon stop --force`, each reported as a line of the teardown. */
export function stopTendDaemon(tend: (args: readonly string[]) => Timed): string[] {
  const k = tend(['kill-all', '--json']);
  let killed = '?';
  try {
    killed = String((JSON.parse(k.stdout) as { killed_count: number }).killed_count);
  } catch {
    /* reported as ? */
  }
  const s = tend(['daemon', 'stop', '--force']);
  return [
    `- \`tend kill-all\`: exit ${k.status}, ${fmt(k.ms, 0)} ms, killed ${killed} process(es)`,
    `- \`tend daemon stop --force\`: exit ${s.status}, ${fmt(s.ms, 0)} ms${s.status === 0 ? '' : ` (${lastLine(s.stderr || s.stdout)})`}`,
  ];
}

/** Waits up to `graceMs` for what `ours()` finds to be gone, then SIGKILLs the rest; returns what had to be killed. */
export function killLeftovers(ours: () => Identity[], graceMs: number): Identity[] {
  const deadline = performance.now() + graceMs;
  let left: Identity[];
  for (;;) {
    left = ours();
    if (left.length === 0 || performance.now() > deadline) break;
    spawnSync('sleep', ['0.1']);
  }
  for (const id of left) killIdentity(id);
  return left;
}
