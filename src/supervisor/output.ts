/**
 * A service's output: its log file (rotating), the listeners of its lines
 * (readiness `log` checks, the foreground `tend up`), and its PID file.
 */
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { errnoOf } from '../core/errors.js';
import type { ProcessHandle } from '../manager/process-handle.js';
import { writeFileAtomicSync } from '../registry/atomic-file.js';
import type { ServiceConfig } from '../service/definition.js';
import type { LineSource } from './readiness.js';
import { RotatingLog, type RotatingLogOptions } from './rotating-log.js';

export interface OutputOptions {
  /** Default log directory: `<dir>/NAME.log` for services without `log`. */
  readonly logDir?: string | undefined;
  /** PID files `<dir>/NAME.pid`, for other tools. */
  readonly runDir?: string | undefined;
  readonly logOptions?: RotatingLogOptions | undefined;
  /** Each line any service prints. */
  readonly onOutput?: ((service: string, line: string) => void) | undefined;
  readonly warn?: ((message: string) => void) | undefined;
}

/** The file a service's output goes to, if any. */
export function logPathOf(definition: ServiceConfig, logDir: string | undefined): string | undefined {
  if (definition.log) return definition.log;
  return logDir ? join(logDir, `${definition.name}.log`) : undefined;
}

export class ServiceOutput {
  readonly #name: string;
  readonly #options: OutputOptions;
  #log: RotatingLog | undefined;
  readonly #lineListeners = new Set<(line: string) => void>();

  constructor(name: string, options: OutputOptions) {
    this.#name = name;
    this.#options = options;
  }

  /** Whether the tree's output must be piped to us (a log, a line listener, a log readiness check). */
  wantsPipe(definition: ServiceConfig): boolean {
    return logPathOf(definition, this.#options.logDir) !== undefined || this.#options.onOutput !== undefined || (definition.ready !== undefined && 'log' in definition.ready);
  }

  /** The log, opened at the definition's path on first use; the first write error is warned about, once. */
  openLog(definition: ServiceConfig): RotatingLog | undefined {
    if (this.#log) return this.#log;
    const path = logPathOf(definition, this.#options.logDir);
    if (path === undefined) return undefined;
    let warned = false;
    this.#log = new RotatingLog(path, {
      ...this.#options.logOptions,
      onError: (error) => {
        if (!warned) this.#options.warn?.(`log of ${this.#name} (${path}): ${(error as Error).message}`);
        warned = true;
      },
    });
    return this.#log;
  }

  closeLog(): void {
    this.#log?.close();
    this.#log = undefined;
  }

  /** Copies the tree's stdout and stderr to the log and, line by line, to the listeners. */
  attach(handle: ProcessHandle, log: RotatingLog | undefined): void {
    const onOutput = this.#options.onOutput;
    for (const stream of [handle.stdout, handle.stderr]) {
      if (!stream) continue;
      let partial = '';
      stream.on('data', (chunk: Buffer) => {
        log?.write(chunk);
        if (!onOutput && this.#lineListeners.size === 0) return;
        const text = partial + chunk.toString('utf8');
        const lines = text.split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) this.#emitLine(line);
      });
      stream.on('end', () => {
        if (partial !== '') this.#emitLine(partial);
        partial = '';
      });
      stream.on('error', () => undefined);
    }
  }

  /** The service's lines from now on, for a readiness `log` check. */
  lineSource(): LineSource {
    return (onLine) => {
      this.#lineListeners.add(onLine);
      return () => this.#lineListeners.delete(onLine);
    };
  }

  writePidFile(pid: number): void {
    if (!this.#options.runDir) return;
    try {
      writeFileAtomicSync(join(this.#options.runDir, `${this.#name}.pid`), `${pid}\n`);
    } catch (error) {
      this.#options.warn?.(`could not write the PID file of ${this.#name}: ${(error as Error).message}`);
    }
  }

  removePidFile(): void {
    if (!this.#options.runDir) return;
    try {
      unlinkSync(join(this.#options.runDir, `${this.#name}.pid`));
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') this.#options.warn?.(`could not remove the PID file of ${this.#name}: ${(error as Error).message}`);
    }
  }

  #emitLine(line: string): void {
    this.#options.onOutput?.(this.#name, line);
    for (const listener of this.#lineListeners) listener(line);
  }
}
