import { mkdirSync, readFileSync, readdirSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { errnoOf } from '../core/errors.js';
import type { StrategyName } from '../core/types.js';
import { strategyNames } from '../core/types.js';
import { writeFileAtomicSync } from './atomic-file.js';

export const RECORD_SCHEMA = 1;

/** Who started a tree: the manager's own identity, checked before its trees are called orphans. */
export interface ManagerIdentity {
  readonly pid: number;
  readonly startTime: number;
  readonly bootId: string;
}

/**
 * What tend persists about one managed tree, so that a later tend can clean
 * it up if both its manager and the reaper die. Written before the child is
 * spawned (pid still null), completed after.
 */
export interface ProcessRecord {
  readonly schema: typeof RECORD_SCHEMA;
  readonly handle: string;
  readonly name: string | null;
  readonly strategy: StrategyName;
  readonly cgroup: string | null;
  /** The leader (direct child); null until spawned. */
  readonly pid: number | null;
  readonly startTime: number | null;
  readonly pgid: number | null;
  readonly bootId: string;
  /** No legitimate member started before this (clock ticks after boot): the manager's start until the leader's is known. */
  readonly notBefore: number;
  readonly manager: ManagerIdentity;
  readonly command: string;
  readonly args: readonly string[];
  readonly startedAt: string;
}

export interface CorruptRecord {
  readonly file: string;
  readonly movedTo: string;
  readonly reason: string;
}

const HANDLE = /^[0-9A-Za-z_-]{1,64}$/;

/** Checks a parsed record's shape; returns why it is unusable, or undefined. */
export function validateRecord(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not a JSON object';
  const r = value as Record<string, unknown>;
  if (r.schema !== RECORD_SCHEMA) return `unknown schema ${JSON.stringify(r.schema)}`;
  if (typeof r.handle !== 'string' || !HANDLE.test(r.handle)) return 'bad handle';
  if (!strategyNames.includes(r.strategy as StrategyName)) return 'bad strategy';
  const isPid = (v: unknown): boolean => v === null || (typeof v === 'number' && Number.isInteger(v) && v > 0);
  if (!isPid(r.pid) || !isPid(r.pgid)) return 'bad pid or pgid';
  if (!(r.startTime === null || Number.isInteger(r.startTime))) return 'bad start time';
  if (!Number.isInteger(r.notBefore)) return 'bad notBefore';
  if (typeof r.bootId !== 'string') return 'bad boot id';
  if (!(r.cgroup === null || (typeof r.cgroup === 'string' && r.cgroup.startsWith('/')))) return 'bad cgroup';
  const m = r.manager as Record<string, unknown> | null;
  if (typeof m !== 'object' || m === null || !Number.isInteger(m.pid) || !Number.isInteger(m.startTime) || typeof m.bootId !== 'string') return 'bad manager identity';
  if (typeof r.command !== 'string' || !Array.isArray(r.args)) return 'bad command';
  return undefined;
}

/**
 * One JSON file per tree in <state>/records: writers never contend, so
 * several tend processes can share a state directory without losing updates.
 */
export class RecordStore {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'records');
  }

  #path(handle: string): string {
    return join(this.dir, `${handle}.json`);
  }

  /** In place before it returns, for every other process: called before the child is spawned. */
  write(record: ProcessRecord): void {
    writeFileAtomicSync(this.#path(record.handle), `${JSON.stringify(record)}\n`);
  }

  remove(handle: string): boolean {
    try {
      unlinkSync(this.#path(handle));
      return true;
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return false;
      throw error;
    }
  }

  /**
   * Takes a record for cleanup: renamed away first, so when several tend
   * processes recover at once each stale record is handled by exactly one.
   */
  claim(handle: string): boolean {
    try {
      renameSync(this.#path(handle), join(this.dir, `${handle}.json.claimed-${process.pid}`));
      return true;
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return false;
      throw error;
    }
  }

  release(handle: string): void {
    try {
      unlinkSync(join(this.dir, `${handle}.json.claimed-${process.pid}`));
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw error;
    }
  }

  /** Every readable record; unreadable ones are moved aside into records/corrupt and reported, never dropped silently. */
  list(): { records: ProcessRecord[]; corrupt: CorruptRecord[] } {
    const records: ProcessRecord[] = [];
    const corrupt: CorruptRecord[] = [];
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return { records, corrupt };
      throw error;
    }
    for (const name of names.filter((n) => !n.endsWith('.json'))) this.#maybeTidy(name);
    // Listed again: a claim put back is a record to process now.
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith('.json')) continue;
      const file = join(this.dir, name);
      let reason: string | undefined;
      let parsed: unknown;
      try {
        parsed = JSON.parse(readFileSync(file, 'utf8'));
        reason = validateRecord(parsed);
      } catch (error) {
        if (errnoOf(error) === 'ENOENT') continue; // removed by its manager while we looked
        reason = error instanceof SyntaxError ? `not valid JSON (${error.message})` : (error as Error).message;
      }
      if (reason === undefined) {
        records.push(parsed as ProcessRecord);
        continue;
      }
      corrupt.push({ file, movedTo: this.#moveAside(file, name), reason });
    }
    return { records, corrupt };
  }

  /**
   * Leftovers of a process that died mid-operation: a temp file its write
   * never renamed (garbage), or a record its recovery claimed and never
   * finished (put back, so this recovery handles it).
   */
  #maybeTidy(name: string): void {
    const temp = /^(.+)\.json\.(\d+)\.\d+\.tmp$/.exec(name);
    const claimed = /^(.+\.json)\.claimed-(\d+)$/.exec(name);
    const owner = Number((temp ?? claimed)?.[2]);
    if (!owner || owner === process.pid || isAlive(owner)) return;
    try {
      if (temp) unlinkSync(join(this.dir, name));
      else if (claimed?.[1]) renameSync(join(this.dir, name), join(this.dir, claimed[1]));
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw error;
    }
  }

  #moveAside(file: string, name: string): string {
    const aside = join(this.dir, 'corrupt');
    mkdirSync(aside, { recursive: true, mode: 0o700 });
    const target = join(aside, `${name}.${Date.now()}`);
    try {
      renameSync(file, target);
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw error;
    }
    return target;
  }
}

/** Whether any process has this pid (a reused pid keeps a leftover a little longer: harmless). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoOf(error) === 'EPERM';
  }
}
