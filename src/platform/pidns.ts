import { TendError } from '../core/errors.js';
import { pollUntil, whenAborted } from '../core/poll.js';
import type { SignalName } from '../core/signals.js';
import type { NormalizedSpec } from '../core/types.js';
import { isDead, type ProcessIdentity } from './identity.js';
import { locateNativeHelper } from './native.js';
import type { ProcEntry } from './proc-table.js';
import { sendSignal } from './signal.js';
import type { AttachedChild, Containment, ContainmentContext, LaunchPlan, Strategy } from './strategy.js';

/**
 * The tree runs in its own PID namespace under tend-nsinit:
 *   outer (our child, host namespace) → init (pid 1 inside) → the command (pid 2) → ...
 * The command must not be pid 1 itself: pid 1 ignores every signal it has no
 * handler for, so SIGTERM would never stop a plain `sleep`. init forwards
 * signals to the whole namespace (kill(-1)), reaps orphans, and reports the
 * command's exit on fd 3. When init dies the kernel kills every process in
 * the namespace, and init dies with outer (parent-death signal), which dies
 * with us: nothing in the namespace can outlive the manager.
 */
/** The signals tend-nsinit's outer process forwards into the namespace (native/nsinit.c). */
const FORWARDED: ReadonlySet<SignalName> = new Set<SignalName>(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGCONT']);

class PidNamespaceContainment implements Containment {
  readonly strategy = 'pidns' as const;
  readonly cgroup = undefined;
  #outer: ProcessIdentity | undefined;
  #exited: Promise<unknown> | undefined;
  #outerGone = false;
  /** init, once seen: remembered so the walk still finds the namespace if outer is killed from outside. */
  #init: { pid: number; startTime: number } | undefined;

  constructor(private readonly context: ContainmentContext) {}

  plan(spec: NormalizedSpec): LaunchPlan {
    const nsinit = locateNativeHelper('tend-nsinit');
    if (!nsinit.path) {
      throw new TendError('STRATEGY_UNAVAILABLE', { strategy: 'pidns', reason: nsinit.reason ?? 'tend-nsinit was not found' });
    }
    const args: string[] = [];
    if (this.context.parentDeathSignal) args.push('-s', '9', '-p', String(process.pid));
    if (process.geteuid?.() !== 0) args.push('-u');
    args.push('--', spec.file, spec.command, ...spec.args);
    return { file: nsinit.path, args, argv0: 'tend-nsinit', statusFd: true };
  }

  attach(child: AttachedChild): void {
    this.#outer = child.identity;
    this.#exited = child.exited;
    const settle = (): void => {
      this.#outerGone = true;
    };
    child.exited.then(settle, settle);
  }

  /** Everything below outer, by parent links: orphans inside the namespace are reparented to init, so none escapes this walk. */
  #tree(): { init: ProcEntry | undefined; members: ProcEntry[] } {
    const outer = this.#outer;
    if (!outer) return { init: undefined, members: [] };
    const children = new Map<number, ProcEntry[]>();
    const byPid = new Map<number, ProcEntry>();
    for (const e of this.context.table.list()) {
      if (e.startTime < outer.startTime) continue;
      byPid.set(e.pid, e);
      const list = children.get(e.ppid);
      if (list) list.push(e);
      else children.set(e.ppid, [e]);
    }
    const known = this.#init && byPid.get(this.#init.pid);
    const init = known && known.startTime === this.#init?.startTime ? known : children.get(outer.pid)?.[0];
    if (init && !this.#init) this.#init = { pid: init.pid, startTime: init.startTime };
    const members: ProcEntry[] = [];
    const queue = init ? [init.pid] : [];
    for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
      for (const c of children.get(pid) ?? []) {
        if (!isDead(c)) members.push(c);
        queue.push(c.pid);
      }
    }
    return { init, members };
  }

  leaderPid(): number | undefined {
    const { init, members } = this.#tree();
    const first = members.filter((m) => m.ppid === init?.pid).sort((a, b) => a.startTime - b.startTime)[0];
    return first?.pid ?? this.#outer?.pid;
  }

  members(): number[] {
    return this.#tree().members.map((m) => m.pid);
  }

  memberEntries(): ProcEntry[] {
    return this.#tree().members;
  }

  signal(signal: SignalName): boolean {
    const outer = this.#outer;
    if (!outer || !this.#outerAlive()) return false;
    const { table } = this.context;
    if (signal === 'SIGKILL') {
      // Killing init makes the kernel kill the whole namespace; its exit
      // completes only once every member is gone, and outer then follows.
      const { init } = this.#tree();
      if (init && !isDead(init)) {
        const identity = { pid: init.pid, startTime: init.startTime, bootId: table.bootId() };
        if (sendSignal(table, { kind: 'process', identity }, 'SIGKILL')) return true;
      }
    }
    // outer forwards these to init, which sends them to the whole namespace
    // at once; any other signal would hit outer itself, so it goes to each member.
    if (FORWARDED.has(signal)) return sendSignal(table, { kind: 'process', identity: outer }, signal);
    let sent = false;
    for (const m of this.#tree().members) {
      sent = sendSignal(table, { kind: 'process', identity: { pid: m.pid, startTime: m.startTime, bootId: table.bootId() } }, signal) || sent;
    }
    return sent;
  }

  async waitEmpty(abort: AbortSignal): Promise<void> {
    if (this.#exited) await Promise.race([this.#exited.catch(() => undefined), whenAborted(abort)]);
    abort.throwIfAborted();
    // outer exits after init, and init after the last member, unless outer was
    // killed from outside: then the namespace is still being torn down.
    await pollUntil(() => this.isEmpty(), abort);
  }

  isEmpty(): boolean {
    return !this.#outerAlive() && this.#tree().members.length === 0;
  }

  /** From the table too, not just the exit event: on the host's exit path no event is delivered any more. */
  #outerAlive(): boolean {
    const outer = this.#outer;
    if (!outer || this.#outerGone) return false;
    const entry = this.context.table.read(outer.pid);
    return entry !== undefined && !isDead(entry) && entry.startTime === outer.startTime;
  }

  release(): void {}
}

export const pidnsStrategy: Strategy = {
  name: 'pidns',
  contain: (context) => new PidNamespaceContainment(context),
};
