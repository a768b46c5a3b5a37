// Drives test/fixtures/manager-host.mjs: a program that uses tend and that a
// test kills. Keeps what it printed, the reapers it reported (so a test that
// fails with a reaper stopped or alive does not leave it behind), and ends
// every host and reaper in killLeftoverHosts().
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { ManagerOptions } from '../../src/index.js';
import { NODE, PATH, fixturePath } from './fixtures.js';
import { RUN_VARIABLE } from './cleanup.js';
import { isAlive, procIdentity, type ProcIdentity } from './proc-scan.js';
import { outputOf, waitFor, waitForExit, waitForLine, type ExitStatus } from './wait.js';

export const MANAGER_HOST = fixturePath('manager-host.mjs');

export interface HostPlan {
  readonly options?: ManagerOptions;
  readonly spec?: Record<string, unknown>;
  readonly loop?: { readonly spec: Record<string, unknown>; readonly max: number };
}

const hosts = new Set<ManagerHost>();
/** Every reaper a host reported, by pid and start time. */
const reapers = new Map<number, number>();

export class ManagerHost {
  readonly child: ChildProcessWithoutNullStreams;

  /** Starts a host with TEND_HOME=stateDir; its own environment carries the run variable (not TEND_ID). */
  constructor(plan: HostPlan, stateDir: string, run: string) {
    this.child = spawn(NODE, [MANAGER_HOST, JSON.stringify(plan)], {
      env: { PATH, TEND_HOME: stateDir, [RUN_VARIABLE]: run },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.on('error', () => undefined);
    this.child.stdin.on('error', () => undefined);
    hosts.add(this);
    outputOf(this.child.stdout);
    outputOf(this.child.stderr);
    this.child.stdout.on('data', () => this.#noteReapers());
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** What it printed, for assertion messages. */
  output = (): string => `host stdout:\n${outputOf(this.child.stdout)}\nhost stderr:\n${outputOf(this.child.stderr)}`;

  #noteReapers(): void {
    for (const pid of this.reaperPids()) {
      if (reapers.has(pid)) continue;
      const id = procIdentity(pid);
      if (id) reapers.set(pid, id.startTime);
    }
  }

  /** Every reaper pid it reported, in order. */
  reaperPids(): number[] {
    return [...outputOf(this.child.stdout).matchAll(/^reaper (\d+)$/gm)].map((m) => Number(m[1]));
  }

  /** The handles it printed, in order. */
  ids(): string[] {
    return [...outputOf(this.child.stdout).matchAll(/^id (\S+)$/gm)].map((m) => m[1] ?? '');
  }

  /** Waits for "created"; returns the reaper it reported (identity read now, while it runs). */
  async created(timeoutMs = 15_000): Promise<ProcIdentity> {
    await waitForLine(this.child.stdout, /^created$/, { what: 'the host to create its manager', timeoutMs, detail: this.output });
    const pid = this.reaperPids()[0];
    const reaper = pid === undefined ? undefined : procIdentity(pid);
    if (!reaper) throw new Error(`the host reported no running reaper\n${this.output()}`);
    reapers.set(reaper.pid, reaper.startTime);
    return reaper;
  }

  /** Waits for "started"; returns the tree's handle and cgroup. */
  async started(timeoutMs = 15_000): Promise<{ id: string; cgroup: string | undefined }> {
    await waitForLine(this.child.stdout, /^started$/, { what: 'the host to start its tree', timeoutMs, detail: this.output });
    const id = this.ids()[0];
    if (id === undefined) throw new Error(`the host printed no id\n${this.output()}`);
    return { id, cgroup: /^cgroup (.+)$/m.exec(outputOf(this.child.stdout))?.[1] };
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  exited(timeoutMs = 10_000): Promise<ExitStatus> {
    return waitForExit(this.child, { what: 'the host', timeoutMs, detail: this.output });
  }
}

/** Waits until a process seen as `id` has no code left to run (gone, or a zombie nobody reaped yet). */
export async function waitGone(id: ProcIdentity, what: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => !isAlive(id.pid, id.startTime), { what: `${what} (pid ${id.pid}) to be gone`, timeoutMs });
}

/** Sends a signal to a process only while it is still the one seen (same start time). */
export function signalIfSame(id: ProcIdentity, signal: NodeJS.Signals): boolean {
  if (!isAlive(id.pid, id.startTime)) return false;
  try {
    process.kill(id.pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** SIGKILLs every host still running and every reaper a host reported that is still alive (a stopped one included). */
export async function killLeftoverHosts(): Promise<void> {
  for (const host of hosts) {
    if (host.child.exitCode === null && host.child.signalCode === null) {
      host.kill('SIGKILL');
      await host.exited().catch(() => undefined);
    }
  }
  hosts.clear();
  for (const [pid, startTime] of reapers) {
    const id = { pid, startTime, ppid: 0, pgid: 0, state: '' };
    if (signalIfSame(id, 'SIGKILL')) await waitGone(id, 'a leftover reaper').catch(() => undefined);
  }
  reapers.clear();
}
