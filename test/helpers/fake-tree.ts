// A process tree made of plain objects behind tend's Containment interface,
// so the kill loop can be tested with members that ignore signals, fork while
// being killed, belong to another user, or die between being listed and being
// signalled: cases real processes produce only by luck. Signals go through
// the real sendSignal (ESRCH is "gone", EPERM is SIGNAL_DENIED) with a fake
// kill in place of the syscall.
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { SignalName } from '../../src/core/signals.js';
import type { ProcEntry, ProcessTable } from '../../src/platform/proc-table.js';
import { sendSignal, type KillFn } from '../../src/platform/signal.js';
import type { Containment, LaunchPlan } from '../../src/platform/strategy.js';

export interface FakeBehaviour {
  /** Signals it lives through; SIGKILL among them makes a process stuck in the kernel (state D). */
  readonly ignores?: readonly SignalName[];
  /** Signals the kernel refuses to deliver to it (another user's process): EPERM. */
  readonly denies?: readonly SignalName[];
  /** Runs as a signal reaches it, before it acts on it: the moment a fork races the kill. */
  readonly onSignal?: (signal: SignalName) => void;
}

export interface FakeProcess {
  readonly pid: number;
  alive: boolean;
  readonly behaviour: FakeBehaviour;
}

export interface Delivery {
  readonly pid: number;
  readonly signal: SignalName;
  /** performance.now() at delivery. */
  readonly at: number;
}

function errno(code: 'ESRCH' | 'EPERM'): NodeJS.ErrnoException {
  return Object.assign(new Error(`kill ${code}`), { code, syscall: 'kill' });
}

/** sendSignal reads no table for a cgroup target; anything else would be a bug in the fake's use. */
const noTable: ProcessTable = {
  read: () => {
    throw new Error('a fake tree signals cgroup targets, which need no process table');
  },
  list: () => [],
  marker: () => undefined,
  bootId: () => 'fake-boot',
};

export class FakeTree implements Containment {
  readonly strategy = 'cgroup' as const;
  readonly cgroup = '/fake/tree';
  /** Every signal that reached a live process, in order. */
  readonly deliveries: Delivery[] = [];
  /** Every call of signal(), in order: one per pass of the kill loop. */
  readonly passes: SignalName[] = [];
  /**
   * Runs after each listing of the members and before they are signalled:
   * the window in which a listed member can exit (ESRCH) or a new one appear.
   */
  afterListing: ((pids: readonly number[]) => void) | undefined;
  /** Makes signal() fail as a broken cgroupfs would. */
  failWith: Error | undefined;
  readonly #processes = new Map<number, FakeProcess>();
  readonly #exits = new EventEmitter();
  #nextPid = 1000;

  spawn(behaviour: FakeBehaviour = {}): FakeProcess {
    const process: FakeProcess = { pid: this.#nextPid++, alive: true, behaviour };
    this.#processes.set(process.pid, process);
    return process;
  }

  exit(process: FakeProcess): void {
    if (!process.alive) return;
    process.alive = false;
    this.#exits.emit('exit');
  }

  /** The signals `pid` received, in order. */
  receivedBy(pid: number): SignalName[] {
    return this.deliveries.filter((d) => d.pid === pid).map((d) => d.signal);
  }

  readonly #kill: KillFn = (pid, signal) => {
    const process = this.#processes.get(pid);
    if (!process?.alive) throw errno('ESRCH');
    if (signal === 0) return;
    if (process.behaviour.denies?.includes(signal)) throw errno('EPERM');
    this.deliveries.push({ pid, signal, at: performance.now() });
    process.behaviour.onSignal?.(signal);
    // A process dies after the kill returns, as a real one does.
    if (!process.behaviour.ignores?.includes(signal)) setImmediate(() => this.exit(process));
  };

  plan(): LaunchPlan {
    throw new Error('a fake tree launches nothing');
  }

  attach(): void {}

  leaderPid(): number | undefined {
    return this.members()[0];
  }

  members(): number[] {
    return [...this.#processes.values()].filter((p) => p.alive).map((p) => p.pid);
  }

  /** The kill loop never reads usage; a fake member is only its pid. */
  memberEntries(): ProcEntry[] {
    return this.members().map((pid): ProcEntry => ({ pid, ppid: 1, pgid: pid, sid: pid, state: 'S', startTime: 0, comm: 'fake' }));
  }

  signal(signal: SignalName): boolean {
    this.passes.push(signal);
    if (this.failWith) throw this.failWith;
    const pids = this.members();
    this.afterListing?.(pids);
    return sendSignal(noTable, { kind: 'cgroup', dir: this.cgroup, pids }, signal, this.#kill);
  }

  waitEmpty(abort: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      // The real waits keep the event loop alive (a watcher, a poll), and
      // stopTree relies on it: its AbortSignal.timeout deadlines do not.
      const keepAlive = setInterval(() => undefined, 1 << 30);
      const check = (): void => {
        if (!this.isEmpty()) return;
        done();
        resolve();
      };
      const onAbort = (): void => {
        done();
        reject(abort.reason as Error);
      };
      const done = (): void => {
        clearInterval(keepAlive);
        this.#exits.off('exit', check);
        abort.removeEventListener('abort', onAbort);
      };
      if (abort.aborted) return onAbort();
      this.#exits.on('exit', check);
      abort.addEventListener('abort', onAbort, { once: true });
      check();
    });
  }

  isEmpty(): boolean {
    return this.members().length === 0;
  }

  release(): void {}
}
