import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { StrategyName } from '../core/types.js';
import type { ManagerIdentity } from '../registry/records.js';

const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 10_000;

interface Registration {
  readonly strategy: StrategyName;
  readonly cgroup: string | null;
  leader?: { pid: number; startTime: number; pgid: number };
}

export interface ReaperLinkOptions {
  /** The tend-reaper binary. */
  readonly binary: string;
  /** The lifecycle log the reaper appends to, if any. */
  readonly logPath?: string | undefined;
  readonly manager: ManagerIdentity;
  /** Told when a dead reaper had to be replaced. */
  readonly onRestart?: (reason: string) => void;
}

/**
 * The manager's end of the pipe to tend-reaper: a separate process in its own
 * session that kills every registered tree when this pipe reaches end of file,
 * i.e. when the manager dies however it dies. Trees are registered before
 * their child is spawned; a reaper that dies is replaced and told everything
 * again.
 *
 * Protocol (one line each): `R handle strategy cgroup|-` before spawn,
 * `P handle pid starttime pgid` after, `U handle` once the tree is gone.
 */
export class ReaperLink {
  readonly #options: ReaperLinkOptions;
  readonly #registrations = new Map<string, Registration>();
  #child: ChildProcess | undefined;
  #closed = false;
  /** When the last restarts happened: a reaper that dies at once, again and again, is given up on. */
  readonly #recentDeaths: number[] = [];

  constructor(options: ReaperLinkOptions) {
    this.#options = options;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  start(): void {
    const { binary, logPath, manager } = this.#options;
    const args = logPath === undefined ? [] : ['--log', logPath];
    const child = spawn(binary, [...args, '--manager', `${manager.pid}:${manager.startTime}`], {
      // Its own session: a Ctrl-C or a kill(-pgid) aimed at the manager's group must not take the reaper too.
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
      env: {},
    });
    this.#child = child;
    // The reaper must never keep the manager's program alive.
    child.unref();
    const stdin = child.stdin as (NodeJS.WritableStream & { unref?: () => void }) | null;
    stdin?.unref?.();
    stdin?.on('error', () => undefined);
    child.on('error', () => undefined);
    child.once('exit', () => {
      if (this.#child !== child || this.#closed) return;
      const now = Date.now();
      this.#recentDeaths.push(now);
      while ((this.#recentDeaths[0] ?? now) < now - RESTART_WINDOW_MS) this.#recentDeaths.shift();
      if (this.#recentDeaths.length > MAX_RESTARTS) {
        // It cannot run here (its log unopenable, say); respawning forever would only burn CPU.
        this.#child = undefined;
        this.#options.onRestart?.(`reaper ${child.pid ?? '?'} died ${this.#recentDeaths.length} times within ${RESTART_WINDOW_MS / 1000} s: giving up; until the next manager, only recovery covers this manager's death`);
        return;
      }
      this.start();
      for (const [handle, r] of this.#registrations) {
        this.#send(`R ${handle} ${r.strategy} ${r.cgroup ?? '-'}`);
        if (r.leader) this.#send(`P ${handle} ${r.leader.pid} ${r.leader.startTime} ${r.leader.pgid}`);
      }
      this.#options.onRestart?.(`reaper ${child.pid ?? '?'} died; started ${this.pid ?? '?'} and re-registered ${this.#registrations.size} tree(s)`);
    });
  }

  #send(line: string): boolean {
    const stdin = this.#child?.stdin;
    if (!stdin || stdin.destroyed) return false;
    stdin.write(`${line}\n`);
    return stdin.writableLength === 0;
  }

  /**
   * Registers a tree before its child exists. Resolves once the line is in
   * the kernel's pipe: from then on a manager death cannot lose it.
   */
  async register(handle: string, strategy: StrategyName, cgroup: string | null): Promise<void> {
    this.#registrations.set(handle, { strategy, cgroup });
    if (this.#send(`R ${handle} ${strategy} ${cgroup ?? '-'}`)) return;
    const stdin = this.#child?.stdin;
    // libuv writes at once when its queue is empty; only a full pipe queues.
    if (stdin && stdin.writableLength > 0) await once(stdin, 'drain');
  }

  identify(handle: string, pid: number, startTime: number, pgid: number): void {
    const r = this.#registrations.get(handle);
    if (!r) return;
    r.leader = { pid, startTime, pgid };
    this.#send(`P ${handle} ${pid} ${startTime} ${pgid}`);
  }

  unregister(handle: string): void {
    if (this.#registrations.delete(handle)) this.#send(`U ${handle}`);
  }

  /** Ends the pipe: the reaper cleans whatever is still registered (nothing, after a clean shutdown) and exits. */
  close(): void {
    this.#closed = true;
    this.#child?.stdin?.end();
  }
}
