import { readFileSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { errnoOf } from '../core/errors.js';
import { matchesIdentity } from '../platform/identity.js';
import type { ProcessTable } from '../platform/proc-table.js';
import { writeFileAtomicSync } from './atomic-file.js';
import type { ManagerIdentity } from './records.js';

export interface ManagerFile extends ManagerIdentity {
  readonly startedAt: string;
  readonly reaperPid: number | null;
}

/**
 * The calling process's identity, as records store it. Fails closed: with a
 * made-up start time every other tend would take this live manager for a dead
 * one and recover (kill) its trees.
 */
export function selfIdentity(table: ProcessTable): ManagerIdentity {
  const entry = table.read(process.pid);
  if (!entry) throw new Error(`cannot read /proc/${process.pid}/stat: tend needs /proc to record who owns its trees`);
  return { pid: process.pid, startTime: entry.startTime, bootId: table.bootId() };
}

/** Whether the manager that wrote a record is still this very process (not just "pid alive"). */
export function isManagerAlive(table: ProcessTable, manager: ManagerIdentity): boolean {
  return matchesIdentity(table, manager, table.read(manager.pid));
}

/** <state>/managers/<pid>.json: one per live manager, with stale detection by identity. */
export class ManagerFiles {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'managers');
  }

  write(file: ManagerFile): string {
    const path = join(this.dir, `${file.pid}.json`);
    writeFileAtomicSync(path, `${JSON.stringify(file)}\n`);
    return path;
  }

  remove(pid: number): void {
    try {
      unlinkSync(join(this.dir, `${pid}.json`));
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw error;
    }
  }

  /** Every manager file, each marked live or stale; stale ones are removed when `prune` is set. */
  list(table: ProcessTable, prune = false): { file: ManagerFile; live: boolean }[] {
    const out: { file: ManagerFile; live: boolean }[] = [];
    let names: string[] = [];
    try {
      names = readdirSync(this.dir);
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw error;
    }
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      let file: ManagerFile;
      try {
        file = JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as ManagerFile;
      } catch {
        continue;
      }
      const live = isManagerAlive(table, file);
      if (!live && prune) this.remove(file.pid);
      out.push({ file, live });
    }
    return out;
  }
}
