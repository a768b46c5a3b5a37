import type { Readable, Writable } from 'node:stream';
import type { SignalName } from '../core/signals.js';
import type { FinalStatus, ProcessStatus, StopOptions, StopResult, StrategyName } from '../core/types.js';
import type { ManagedProcess } from './managed-process.js';

/** The verbs a handle forwards to its manager, which owns the policy (e.g. defaults for stop). */
export interface HandleOwner {
  status(handle: ProcessHandle): ProcessStatus;
  stop(handle: ProcessHandle, options?: StopOptions): Promise<StopResult>;
  signal(handle: ProcessHandle, signal: SignalName | number): boolean;
}

/** A started process tree: its identity and the verbs that act on it. */
export class ProcessHandle {
  /** @internal */
  readonly managed: ManagedProcess;
  readonly #manager: HandleOwner;

  /** @internal */
  constructor(manager: HandleOwner, managed: ManagedProcess) {
    this.#manager = manager;
    this.managed = managed;
  }

  /** Unique id; also the value of TEND_ID in every member's environment. */
  get id(): string {
    return this.managed.id;
  }

  get name(): string | undefined {
    return this.managed.spec.name;
  }

  get strategy(): StrategyName {
    return this.managed.strategy;
  }

  /** pid of the direct child (for pidns: the namespace wrapper; status() shows the command's own pid). */
  get pid(): number | undefined {
    return this.managed.directPid;
  }

  /** The tree's cgroup directory, with the cgroup strategy. */
  get cgroup(): string | undefined {
    return this.managed.containment.cgroup;
  }

  get startedAt(): Date {
    return this.managed.startedAt;
  }

  /** With stdio "pipe". */
  get stdout(): Readable | null {
    return this.managed.stdout;
  }

  get stderr(): Readable | null {
    return this.managed.stderr;
  }

  get stdin(): Writable | null {
    return this.managed.stdin;
  }

  /** Live members of the tree now (host pids, tend's own wrappers excluded); empty once it has ended. */
  members(): number[] {
    return this.managed.members();
  }

  status(): ProcessStatus {
    return this.#manager.status(this);
  }

  stop(options?: StopOptions): Promise<StopResult> {
    return this.#manager.stop(this, options);
  }

  signal(signal: SignalName | number): boolean {
    return this.#manager.signal(this, signal);
  }

  /** Resolves with the final status once nothing of the tree is alive. */
  wait(): Promise<FinalStatus> {
    return this.managed.finished;
  }

  toJSON(): { id: string; name: string | undefined; pid: number | undefined; strategy: StrategyName; status: ProcessStatus } {
    return { id: this.id, name: this.name, pid: this.pid, strategy: this.strategy, status: this.status() };
  }
}
