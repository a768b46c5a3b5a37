import type { ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { TendError } from '../core/errors.js';
import { signalName, type SignalName } from '../core/signals.js';
import type { FinalStatus, NormalizedSpec, ProcessStatus, StopResult, StrategyName } from '../core/types.js';
import type { ProcessIdentity } from '../platform/identity.js';
import type { ProcessTable } from '../platform/proc-table.js';
import type { Containment } from '../platform/strategy.js';
import { usageOfEntries, type Usage } from '../platform/usage.js';
import { stopTree, type StopPlan } from '../terminate/stop-tree.js';

/** A tree's members and what they use, at one look. */
export interface TreeUsage extends Usage {
  /** The command's pid while it runs, else the direct child's (as a handle's status and pid show them). */
  readonly pid: number | undefined;
  readonly pids: number[];
}

interface LeaderExit {
  readonly code: number | null;
  readonly signal: SignalName | null;
  readonly at: Date;
}

export interface LifecycleListener {
  detached(process: ManagedProcess): void;
  finished(process: ManagedProcess, status: FinalStatus): void;
  warning(process: ManagedProcess, message: string, cause: unknown): void;
  /** A stop signalled the tree (and SIGKILLed it when `forced`). */
  stopped(process: ManagedProcess, signal: SignalName, forced: boolean): void;
}

/**
 * One managed tree and its lifecycle: running → (running-detached) → final.
 * The leader's exit decides exited vs terminated; the tree's emptiness
 * decides when the status becomes final.
 */
export class ManagedProcess {
  readonly id: string;
  readonly spec: NormalizedSpec;
  readonly containment: Containment;
  readonly startedAt = new Date();
  #child: ChildProcess | undefined;
  #identity: ProcessIdentity | undefined;
  #leader: LeaderExit | undefined;
  #final: FinalStatus | undefined;
  #stopping: Promise<StopResult> | undefined;
  readonly #finished: Promise<FinalStatus>;
  /** Settles once the child is spawned (attach) or will never be (fail). */
  readonly #spawnSettled: Promise<void>;
  #settleSpawn!: () => void;
  #resolveFinished!: (status: FinalStatus) => void;
  readonly #watch = new AbortController();

  constructor(
    id: string,
    spec: NormalizedSpec,
    containment: Containment,
    private readonly table: ProcessTable,
    private readonly listener: LifecycleListener,
  ) {
    this.id = id;
    this.spec = spec;
    this.containment = containment;
    this.#finished = new Promise((resolve) => (this.#resolveFinished = resolve));
    this.#spawnSettled = new Promise((resolve) => (this.#settleSpawn = resolve));
  }

  get strategy(): StrategyName {
    return this.containment.strategy;
  }

  get directPid(): number | undefined {
    return this.#child?.pid;
  }

  get identity(): ProcessIdentity | undefined {
    return this.#identity;
  }

  get stdout(): Readable | null {
    return this.#child?.stdout ?? null;
  }

  get stderr(): Readable | null {
    return this.#child?.stderr ?? null;
  }

  get stdin(): Writable | null {
    return this.#child?.stdin ?? null;
  }

  /** Settles with the final status once nothing of the tree is alive. */
  get finished(): Promise<FinalStatus> {
    return this.#finished;
  }

  /** Takes ownership of the spawned direct child; `exited` settles when it has been reaped. */
  attach(child: ChildProcess, identity: ProcessIdentity, exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>, statusFd: boolean): void {
    this.#child = child;
    this.#identity = identity;
    this.containment.attach({ identity, exited });
    this.#settleSpawn();
    if (statusFd) this.#readStatusFd(child);
    void exited.then(({ code, signal }) => this.#onDirectChildExit(code, signal));
  }

  /** tend-nsinit reports the command's own exit on fd 3 while the rest of the namespace may run on. */
  #readStatusFd(child: ChildProcess): void {
    const stream = child.stdio[3] as Readable | null | undefined;
    if (!stream) return;
    let text = '';
    stream.setEncoding('latin1');
    stream.on('data', (chunk: string) => {
      text += chunk;
      const match = /^(exit|signal) (\d+)\n/.exec(text);
      if (!match) return;
      const n = Number(match[2]);
      const at = new Date();
      this.#onLeaderExit(match[1] === 'exit' ? { code: n, signal: null, at } : { code: null, signal: signalName(n) ?? 'SIGKILL', at });
    });
    stream.on('error', () => undefined);
  }

  #onDirectChildExit(code: number | null, signal: NodeJS.Signals | null): void {
    // For pidns the direct child is tend-nsinit, which exits last and mirrors the
    // command's status; for the other strategies it is the command itself.
    // Either way the wrappers are gone now, so no member means an empty tree.
    // isEmpty(), not members(): a cgroup's member list omits processes that
    // are still exiting (and holding files), its "populated" flag does not.
    const leaderWasKnown = this.#leader !== undefined;
    this.#leader ??= { code, signal, at: new Date() };
    if (this.containment.isEmpty()) return this.#finish();
    if (!leaderWasKnown && this.containment.members().length > 0) this.listener.detached(this);
    void this.#awaitEmpty();
  }

  /** Only tend-nsinit reports the leader apart from the direct child: the namespace may live on without it. */
  #onLeaderExit(leader: LeaderExit): void {
    if (this.#leader) return;
    this.#leader = leader;
    // members(), not isEmpty(): the wrappers outlive the command by a moment without being members.
    if (this.containment.members().length > 0) this.listener.detached(this);
  }

  async #awaitEmpty(): Promise<void> {
    for (let retry = 1; !this.#final; retry = Math.min(retry * 2, 1000)) {
      try {
        await this.containment.waitEmpty(this.#watch.signal);
        this.#finish();
        return;
      } catch (error) {
        if (this.#watch.signal.aborted) return; // settled meanwhile
        // Reading the process table or cgroupfs failed (e.g. out of file descriptors): try again, never give up on a tree.
        this.listener.warning(this, `waiting for tree ${this.id} to empty failed, retrying: ${(error as Error).message}`, error);
        await delay(retry);
      }
    }
  }

  #finish(): void {
    if (this.#final) return;
    const leader = this.#leader;
    // Only reached once the direct child has exited, so the leader is known;
    // the fallback covers a leader that vanished without a reported status.
    const status: FinalStatus = leader?.signal
      ? { state: 'terminated', signal: leader.signal, at: leader.at }
      : { state: 'exited', exitCode: leader?.code ?? 0, at: leader?.at ?? new Date() };
    this.#settle(status);
  }

  /** Marks a start that never produced a running tree. */
  fail(error: TendError): void {
    this.#settleSpawn();
    this.#settle({ state: 'failed', error });
  }

  #settle(status: FinalStatus): void {
    if (this.#final) return;
    this.#final = status;
    this.#watch.abort();
    this.containment.release();
    this.#resolveFinished(status);
    this.listener.finished(this, status);
  }

  status(): ProcessStatus {
    if (this.#final) return this.#final;
    if (!this.#identity) return { state: 'starting' };
    const leader = this.#leader;
    if (!leader) {
      const pid = this.containment.leaderPid() ?? this.#identity.pid;
      return { state: 'running', pid, unresponsive: this.#isUnresponsive(pid) };
    }
    const childPids = this.containment.members();
    return {
      state: 'running-detached',
      exitCode: leader.code,
      signal: leader.signal,
      childPids,
      unresponsive: childPids.some((pid) => this.#isUnresponsive(pid)),
    };
  }

  /** Live members of the tree (host pids, tend's wrappers excluded); none once it has ended. */
  members(): number[] {
    return this.#final ? [] : this.containment.members();
  }

  /**
   * The pid status() shows while the tree runs (its command's own), else the
   * direct child's; with the members and their usage, read once each.
   */
  treeUsage(): TreeUsage {
    const running = !this.#final && this.#identity !== undefined && this.#leader === undefined;
    const pid = running ? (this.containment.leaderPid() ?? this.#identity?.pid) : this.directPid;
    const entries = this.#final ? [] : this.containment.memberEntries();
    return { pid, pids: entries.map((e) => e.pid), ...usageOfEntries(entries) };
  }

  /** A stopped or traced process (T) cannot act on anything, and one in uninterruptible sleep (D) is stuck in the kernel. */
  #isUnresponsive(pid: number): boolean {
    const state = this.table.read(pid)?.state;
    return state === 'T' || state === 't' || state === 'D';
  }

  /** Sends a signal to every member of the tree without stopping it; false when nobody was left. */
  signal(signal: SignalName): boolean {
    if (this.#final) return false;
    return this.containment.signal(signal);
  }

  /**
   * Stops the whole tree; concurrent and repeated calls share one stop. A
   * SIGKILL stop that arrives while a graceful one waits out its grace period
   * kills at once (the second Ctrl-C).
   */
  stop(plan: Omit<StopPlan, 'handle'>): Promise<StopResult> {
    // Once final, every later stop finds nothing to do; callers that came while a stop ran share its result.
    if (this.#final) return Promise.resolve({ alreadyGone: true, forced: false, status: this.#final });
    if (this.#stopping) {
      if (plan.signal === 'SIGKILL' && this.#identity) this.containment.signal('SIGKILL');
      return this.#stopping;
    }
    const stopping = this.#stop({ ...plan, handle: this.id });
    this.#stopping = stopping;
    // A failed stop is not cached: the next call tries again.
    stopping.catch(() => {
      if (this.#stopping === stopping) this.#stopping = undefined;
    });
    return stopping;
  }

  async #stop(plan: StopPlan): Promise<StopResult> {
    // A stop during start() waits for the spawn: stopping a tree that does
    // not exist yet would let it start unowned a moment later.
    await this.#spawnSettled;
    if (this.#final) return { alreadyGone: true, forced: false, status: this.#final };
    const outcome = await stopTree(this.containment, plan);
    if (!outcome.alreadyGone) this.listener.stopped(this, plan.signal, outcome.forced);
    const status = await this.#finished;
    return { alreadyGone: outcome.alreadyGone, forced: outcome.forced, status };
  }

  get stopPlan(): StopPlan {
    return { signal: this.spec.stopSignal, timeoutMs: this.spec.stopTimeoutMs, handle: this.id };
  }
}
