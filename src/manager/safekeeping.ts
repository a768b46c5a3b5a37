import type { ProcessTable } from '../platform/proc-table.js';
import { locateNativeHelper } from '../platform/native.js';
import { ReaperLink } from '../reaper/reaper-link.js';
import { LifecycleLog } from '../registry/lifecycle-log.js';
import { ManagerFiles, selfIdentity } from '../registry/manager-file.js';
import { RECORD_SCHEMA, RecordStore, type ManagerIdentity, type ProcessRecord } from '../registry/records.js';
import { recoverOrphans, type RecoveryReport } from '../registry/recover.js';
import { ensureStateDir, resolveStateDir } from '../registry/state-dir.js';
import type { ManagedProcess } from './managed-process.js';

/** How long a tree runs before its record is completed with the leader's identity. */
const RECORD_COMPLETION_DELAY_MS = 25;

export interface SafekeepingOptions {
  /** A directory, or false for nothing on disk; undefined resolves it from `env`. */
  readonly stateDir: string | false | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly table: ProcessTable;
  readonly reaper: boolean;
  readonly recover: boolean;
  readonly warn: (message: string, cause?: unknown) => void;
}

/**
 * What keeps a manager's trees from outliving it when it cannot stop them
 * itself: the records a later tend recovers from, the reaper that kills every
 * tree if this process dies, the manager file and the lifecycle log.
 */
export class Safekeeping {
  readonly self: ManagerIdentity;
  /** What recovery at open() cleaned up, when it ran. */
  readonly recovery: RecoveryReport | undefined;
  readonly #store: RecordStore | undefined;
  readonly #log: LifecycleLog | undefined;
  readonly #managerFiles: ManagerFiles | undefined;
  readonly #reaper: ReaperLink | undefined;
  readonly #completions = new Map<string, NodeJS.Timeout>();
  readonly #warn: SafekeepingOptions['warn'];

  private constructor(
    self: ManagerIdentity,
    parts: {
      store: RecordStore | undefined;
      log: LifecycleLog | undefined;
      managerFiles: ManagerFiles | undefined;
      reaper: ReaperLink | undefined;
      recovery: RecoveryReport | undefined;
      warn: SafekeepingOptions['warn'];
    },
  ) {
    this.self = self;
    this.#warn = parts.warn;
    this.#store = parts.store;
    this.#log = parts.log;
    this.#managerFiles = parts.managerFiles;
    this.#reaper = parts.reaper;
    this.recovery = parts.recovery;
  }

  /** Prepares the state directory, recovers dead managers' trees, starts the reaper. */
  static async open(options: SafekeepingOptions): Promise<Safekeeping> {
    const self = selfIdentity(options.table);
    const dir = options.stateDir === false ? undefined : ensureStateDir(options.stateDir ?? resolveStateDir(options.env));
    const store = dir === undefined ? undefined : new RecordStore(dir);
    const log = dir === undefined ? undefined : new LifecycleLog(dir);
    log?.maybeRotate();
    const recovery = store && options.recover ? await recoverOrphans({ store, table: options.table, log }) : undefined;
    const binary = locateNativeHelper('tend-reaper').path;
    let reaper: ReaperLink | undefined;
    if (options.reaper && binary !== undefined) {
      reaper = new ReaperLink({
        binary,
        logPath: log?.path,
        manager: self,
        onRestart: (reason) => {
          log?.append({ event: 'reaper-restart', handle: null, pid: reaper?.pid ?? null, reason });
          options.warn(reason);
        },
      });
      reaper.start();
      log?.append({ event: 'reaper-start', handle: null, pid: reaper.pid ?? null, reason: 'manager created' });
    }
    const managerFiles = dir === undefined ? undefined : new ManagerFiles(dir);
    // Stale detection: files of managers that died without removing theirs go.
    managerFiles?.list(options.table, true);
    managerFiles?.write({ ...self, startedAt: new Date().toISOString(), reaperPid: reaper?.pid ?? null });
    return new Safekeeping(self, { store, log, managerFiles, reaper, recovery, warn: options.warn });
  }

  get reaperPid(): number | undefined {
    return this.#reaper?.pid;
  }

  /**
   * Before the child exists: the record (for a later recovery) and the
   * reaper's registration (for this manager's death) are both in place before
   * the command can run a single instruction.
   */
  async beforeSpawn(managed: ManagedProcess): Promise<ProcessRecord> {
    const record: ProcessRecord = {
      schema: RECORD_SCHEMA,
      handle: managed.id,
      name: managed.spec.name ?? null,
      strategy: managed.containment.strategy,
      cgroup: managed.containment.cgroup ?? null,
      pid: null,
      startTime: null,
      pgid: null,
      bootId: this.self.bootId,
      notBefore: this.self.startTime,
      manager: this.self,
      command: managed.spec.file,
      args: managed.spec.args,
      startedAt: managed.startedAt.toISOString(),
    };
    this.#store?.write(record);
    await this.#reaper?.register(managed.id, record.strategy, record.cgroup);
    this.#log?.append({ event: 'register', handle: managed.id, pid: null, reason: `${record.strategy}: ${record.command}` });
    return record;
  }

  /**
   * Tells the reaper the leader's identity at once, and completes the record
   * with it once the tree has lived a moment. Recovery works from the record
   * written before spawn (cgroup, marker, the manager's start time as a lower
   * bound), so short-lived trees, most of them, skip the rewrite: a rename
   * over an existing file is the dearest step of a start's bookkeeping.
   */
  afterSpawn(managed: ManagedProcess, record: ProcessRecord): void {
    const leader = managed.identity;
    if (!leader) return;
    // The child leads its own process group (it is spawned detached), so its pgid is its pid.
    this.#reaper?.identify(managed.id, leader.pid, leader.startTime, leader.pid);
    const store = this.#store;
    if (!store) return;
    const complete = { ...record, pid: leader.pid, startTime: leader.startTime, pgid: leader.pid, notBefore: leader.startTime };
    const timer = setTimeout(() => {
      this.#completions.delete(managed.id);
      try {
        store.write(complete);
      } catch (error) {
        // The record written before spawn still lets a later tend recover the tree.
        this.#warn(`could not complete the record of ${managed.id}: ${(error as Error).message}`, error);
      }
    }, RECORD_COMPLETION_DELAY_MS);
    timer.unref();
    this.#completions.set(managed.id, timer);
  }

  #cancelCompletion(id: string): void {
    clearTimeout(this.#completions.get(id));
    this.#completions.delete(id);
  }

  logStop(id: string, signal: string, forced: boolean): void {
    this.#log?.append({ event: 'signal', handle: id, pid: null, reason: `stop: ${signal} to every member` });
    if (forced) this.#log?.append({ event: 'kill', handle: id, pid: null, reason: 'stop: SIGKILL after the grace period' });
  }

  /** The tree is gone: forget it everywhere. */
  forget(id: string, reason: string): void {
    this.#cancelCompletion(id);
    this.#reaper?.unregister(id);
    this.#log?.append({ event: 'unregister', handle: id, pid: null, reason });
    try {
      this.#store?.remove(id);
    } catch (error) {
      // A stale record only costs a later recovery a look: nothing of the tree is alive.
      this.#warn(`could not remove the record of ${id}: ${(error as Error).message}`, error);
    }
  }

  /** On the host's exit path: the reaper learns at end of input and finds nothing left. */
  forgetSync(id: string): void {
    this.#cancelCompletion(id);
    this.#log?.append({ event: 'unregister', handle: id, pid: null, reason: 'stopped as the host exited' });
    this.#store?.remove(id);
  }

  close(): void {
    for (const id of [...this.#completions.keys()]) this.#cancelCompletion(id);
    this.#reaper?.close();
    this.closeSync();
  }

  closeSync(): void {
    this.#managerFiles?.remove(this.self.pid);
  }
}
