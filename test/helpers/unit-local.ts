// Small helpers for the spawn, core, platform and cli tests: a look at /proc
// that does not go through tend's own process table (so a bug there cannot
// hide a leak), waiting for a condition with a deadline, and running a
// program with a deadline.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** The repository root (compiled tests live in dist/test/<dir>/). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export function makeTempDir(): string {
  return mkdtempSync(`${tmpdir()}/tend-`);
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface ProcInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly state: string;
  readonly env: ReadonlyMap<string, string>;
  readonly cmdline: string;
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

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ').trim();
    return { pid, ppid: Number(fields[1]), state: fields[0] ?? '?', env: parseEnviron(environ), cmdline };
  } catch {
    return undefined; // gone while we looked
  }
}

/** Every process visible in /proc except this one. Zombies are included unless `live` is set. */
export function scanProcesses(options: { live?: boolean } = {}): ProcInfo[] {
  const found: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const info = readProc(Number(name));
    if (!info) continue;
    if (options.live && (info.state === 'Z' || info.state === 'X')) continue;
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

/**
 * Resolves once `condition()` returns a truthy value (which it returns),
 * checking with a growing interval; rejects with `what` at the deadline.
 * For conditions that offer no event (a /proc entry, a file appearing).
 */
export async function waitFor<T>(condition: () => T | undefined | false | null, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let interval = 1;
  for (;;) {
    const value = condition();
    if (value) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(interval);
    interval = Math.min(interval * 2, 50);
  }
}

/** Rejects with `what` if `promise` has not settled within `timeoutMs`. */
export async function withDeadline<T>(promise: Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  const abort = new AbortController();
  try {
    return await Promise.race([
      promise,
      delay(timeoutMs, undefined, { signal: abort.signal }).then(() => {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      }),
    ]);
  } finally {
    abort.abort();
  }
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A started program whose output is collected as it comes. */
export class Running {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly closed: Promise<void>;

  constructor(file: string, args: readonly string[], options: SpawnOptions) {
    this.child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    this.child.stdout?.setEncoding('utf8').on('data', (s: string) => (this.stdout += s));
    this.child.stderr?.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    const failed = once(this.child, 'error').then(([error]) => {
      throw error as Error;
    });
    failed.catch(() => undefined);
    this.exited = Promise.race([
      once(this.child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null })),
      failed,
    ]);
    this.closed = Promise.race([once(this.child, 'close').then(() => undefined), failed]);
    this.exited.catch(() => undefined);
    this.closed.catch(() => undefined);
  }

  /** Resolves once `pattern` shows up in stdout (or stderr with `stream`). */
  async waitForOutput(pattern: RegExp, timeoutMs = 10_000, stream: 'stdout' | 'stderr' = 'stdout'): Promise<void> {
    const source = stream === 'stdout' ? this.child.stdout : this.child.stderr;
    if (!source) throw new Error(`${stream} is not piped`);
    if (pattern.test(this[stream])) return;
    const seen = new Promise<void>((resolve, reject) => {
      const onData = (): void => {
        if (pattern.test(this[stream])) finish();
      };
      const onEnd = (): void => finish(new Error(`${stream} ended without ${String(pattern)}; it was: ${JSON.stringify(this[stream])}`));
      const finish = (error?: Error): void => {
        source.off('data', onData);
        source.off('end', onEnd);
        if (error) reject(error);
        else resolve();
      };
      source.on('data', onData);
      source.on('end', onEnd);
    });
    await withDeadline(seen, `${String(pattern)} on ${stream} (so far: ${JSON.stringify(this[stream])})`, timeoutMs);
  }

  /** Waits for the exit and for the output streams to close, each with a deadline. */
  async result(timeoutMs = 20_000): Promise<RunResult> {
    const { code, signal } = await withDeadline(this.exited, `exit of ${this.describe()}`, timeoutMs).catch((error: unknown) => {
      this.child.kill('SIGKILL');
      throw error;
    });
    // Output pipes stay open while anything that inherited them lives on.
    await withDeadline(this.closed, `the output of ${this.describe()} to close (something that inherited it still runs)`, 5000);
    return { code, signal, stdout: this.stdout, stderr: this.stderr };
  }

  describe(): string {
    return `${this.child.spawnfile} ${this.child.spawnargs.slice(1).join(' ')}`;
  }
}

/** Runs a program to completion with a deadline and returns its exit and output. */
export function run(file: string, args: readonly string[], options: SpawnOptions = {}, timeoutMs = 20_000): Promise<RunResult> {
  return new Running(file, args, options).result(timeoutMs);
}

export const isRoot = process.getuid?.() === 0;
