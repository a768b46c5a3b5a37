// Small helpers for the spawn, core, platform and cli tests: temporary
// directories, and running a program with a deadline. (The look at /proc is
// proc-scan.ts, the waiting is wait.ts.)
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { withDeadline } from './wait.js';

/** The repository root (compiled tests live in dist/test/<dir>/). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export function makeTempDir(): string {
  return mkdtempSync(`${tmpdir()}/tend-`);
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
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
    await withDeadline(seen, { what: `${String(pattern)} on ${stream}`, timeoutMs, detail: () => `so far: ${JSON.stringify(this[stream])}` });
  }

  /** Waits for the exit and for the output streams to close, each with a deadline. */
  async result(timeoutMs = 20_000): Promise<RunResult> {
    const { code, signal } = await withDeadline(this.exited, { what: `exit of ${this.describe()}`, timeoutMs }).catch((error: unknown) => {
      this.child.kill('SIGKILL');
      throw error;
    });
    // Output pipes stay open while anything that inherited them lives on.
    await withDeadline(this.closed, { what: `the output of ${this.describe()} to close (something that inherited it still runs)`, timeoutMs: 5000 });
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
