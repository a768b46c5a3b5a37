// The state directory as the tests see it: temporary TEND_HOMEs, the records
// and the lifecycle log read straight from disk, records fabricated by hand,
// and processes started to stand in for managers and strangers.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RECORD_SCHEMA, type ManagerIdentity, type ProcessRecord } from '../../src/registry/records.js';
import { RUN_VARIABLE } from './cleanup.js';
import { PATH } from './fixtures.js';
import { MARKER, describeProcesses, findMarked, procIdentity, type MarkedProcess, type ProcIdentity } from './proc-scan.js';
import { waitFor } from './wait.js';

export const SLEEP = ['/usr/bin/sleep', '/bin/sleep'].find((p) => existsSync(p)) ?? '/bin/sleep';

const stateDirs = new Set<string>();

/** A fresh state directory (mode 0700), removed by removeStateDirs(). */
export function makeStateDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `tend-${label}-`));
  chmodSync(dir, 0o700);
  stateDirs.add(dir);
  return dir;
}

/** Removes every state directory made by makeStateDir (a test may have changed their owner or mode). */
export function removeStateDirs(): void {
  for (const dir of stateDirs) {
    try {
      chmodSync(dir, 0o700);
    } catch {
      /* gone, or not a directory any more */
    }
    rmSync(dir, { recursive: true, force: true });
  }
  stateDirs.clear();
}

/** Names of the files in <state>/records (records, temp files, claimed records; not the corrupt/ folder). */
export function recordDirEntries(stateDir: string): string[] {
  try {
    return readdirSync(join(stateDir, 'records'), { withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

/** The record files (<handle>.json) in <state>/records. */
export function recordFiles(stateDir: string): string[] {
  return recordDirEntries(stateDir).filter((name) => name.endsWith('.json'));
}

export function recordPath(stateDir: string, handle: string): string {
  return join(stateDir, 'records', `${handle}.json`);
}

export interface LifecycleLine {
  readonly event: string;
  readonly handle: string | null;
  readonly pid: number | null;
  readonly reason: string;
  readonly source: string;
  readonly manager: number | string | null;
  readonly time: string;
}

/** Every line of <state>/lifecycle.jsonl, parsed; throws naming the first line that is not a JSON object. */
export function lifecycleLines(stateDir: string): LifecycleLine[] {
  let text: string;
  try {
    text = readFileSync(join(stateDir, 'lifecycle.jsonl'), 'utf8');
  } catch {
    return [];
  }
  if (text !== '' && !text.endsWith('\n')) throw new Error(`lifecycle.jsonl does not end with a newline:\n${text}`);
  const lines = text === '' ? [] : text.slice(0, -1).split('\n');
  return lines.map((line, i) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (error) {
      throw new Error(`lifecycle.jsonl line ${i + 1} is not JSON (${(error as Error).message}): ${line}`, { cause: error });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`lifecycle.jsonl line ${i + 1} is not a JSON object: ${line}`);
    return parsed as LifecycleLine;
  });
}

export function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
}

/** This very process, as a record names its manager. */
export function ownIdentity(): ManagerIdentity {
  const self = procIdentity(process.pid);
  if (!self) throw new Error('cannot read /proc/self/stat');
  return { pid: process.pid, startTime: self.startTime, bootId: bootId() };
}

/** The identity of a process that existed and is gone (a manager that died). */
export async function deadIdentity(): Promise<ManagerIdentity> {
  const child = spawn(SLEEP, ['1000'], { stdio: 'ignore', env: { PATH } });
  const exited = once(child, 'exit');
  await once(child, 'spawn');
  const id = procIdentity(child.pid ?? 0);
  child.kill('SIGKILL');
  await exited;
  if (!id) throw new Error('could not read the identity of a short-lived sleep');
  return { pid: id.pid, startTime: id.startTime, bootId: bootId() };
}

/** A record of schema 1 with the given fields; the rest names a tree that never ran. */
export function fabricateRecord(fields: Partial<ProcessRecord> & Pick<ProcessRecord, 'handle' | 'manager'>): ProcessRecord {
  return {
    schema: RECORD_SCHEMA,
    name: null,
    strategy: 'pgroup',
    cgroup: null,
    pid: null,
    startTime: null,
    pgid: null,
    bootId: fields.manager.bootId,
    notBefore: fields.manager.startTime,
    command: SLEEP,
    args: ['1000'],
    startedAt: new Date().toISOString(),
    ...fields,
  };
}

export interface HandMadeTree {
  readonly handle: string;
  /** The shell that leads the tree (its own process group and session). */
  readonly leader: ProcIdentity;
  /** Every process of the tree, found by its marker once all three run. */
  readonly processes: MarkedProcess[];
}

/**
 * A tree as tend would have left it, started here without tend: a shell
 * leading its own group with two sleeps, all carrying TEND_ID=<handle> and
 * the test run's variable.
 */
export async function startMarkedTree(handle: string, run: string): Promise<HandMadeTree> {
  const child = spawn('/bin/sh', ['-c', `${SLEEP} 1000 & ${SLEEP} 1000`], { detached: true, stdio: 'ignore', env: { PATH, [MARKER]: handle, [RUN_VARIABLE]: run } });
  child.on('error', () => undefined);
  await once(child, 'spawn');
  let last: MarkedProcess[] = [];
  const processes = await waitFor(
    () => {
      last = findMarked({ value: handle });
      return last.filter((p) => p.comm === 'sleep').length === 2 && last.some((p) => p.pid === child.pid) ? last : undefined;
    },
    { what: `the hand-made tree ${handle} (sh and two sleeps)`, detail: () => describeProcesses(last) },
  );
  const leader = procIdentity(child.pid ?? 0);
  if (!leader) throw new Error(`the leader of ${handle} is gone`);
  return { handle, leader, processes };
}

/** An unrelated process: a sleep leading its own process group, without tend's marker (only the run's variable, for cleanup). */
export async function startStranger(run: string): Promise<ProcIdentity> {
  const child = spawn(SLEEP, ['1000'], { detached: true, stdio: 'ignore', env: { PATH, [RUN_VARIABLE]: run } });
  child.on('error', () => undefined);
  await once(child, 'spawn');
  const id = procIdentity(child.pid ?? 0);
  if (!id) throw new Error('the stranger sleep is gone');
  return id;
}
