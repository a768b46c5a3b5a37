import { appendFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type LifecycleEvent = 'register' | 'unregister' | 'signal' | 'kill' | 'orphan-cleanup' | 'reaper-start' | 'reaper-restart' | 'corrupt-record';

export interface LifecycleEntry {
  readonly event: LifecycleEvent;
  readonly handle: string | null;
  readonly pid: number | null;
  readonly reason: string;
}

/** Above this the log is rotated to lifecycle.jsonl.1 when a manager starts. */
const ROTATE_BYTES = 8 * 1024 * 1024;

/**
 * <state>/lifecycle.jsonl: one JSON object per line, appended with a single
 * write (O_APPEND), so lines from several processes (managers, the reaper)
 * never interleave.
 */
export class LifecycleLog {
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, 'lifecycle.jsonl');
  }

  append(entry: LifecycleEntry): void {
    const line = JSON.stringify({ time: new Date().toISOString(), ...entry, source: 'manager', manager: process.pid });
    try {
      appendFileSync(this.path, `${line}\n`, { mode: 0o600 });
    } catch {
      // The log is a record for people; losing a line must never stop a start or a stop.
    }
  }

  maybeRotate(): boolean {
    try {
      if (statSync(this.path).size < ROTATE_BYTES) return false;
      renameSync(this.path, `${this.path}.1`);
      return true;
    } catch {
      return false;
    }
  }
}
