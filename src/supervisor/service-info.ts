/**
 * What the supervisor reports about a service: the JSON shape of
 * `tend ps --json`, `tend status NAME --json` and the daemon's responses.
 * Keys are snake_case, as in every JSON document tend prints (docs/json.md),
 * and stable; new ones may be added.
 */
import type { RestartPolicy } from '../service/definition.js';

/**
 * queued: waiting for a slot under the concurrency limit;
 * starting: spawned, its readiness check not passed yet;
 * running: up (and ready, when it has a check);
 * backoff: exited, waiting to be restarted;
 * stopping: being stopped;
 * stopped: stopped by the user, or never started;
 * exited: ended on its own and, by its policy, not restarted;
 * failed: could not be started, did not get ready, or gave up restarting (see reason).
 */
export type ServiceState = 'queued' | 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped' | 'exited' | 'failed';

export const serviceStates: readonly ServiceState[] = ['queued', 'starting', 'running', 'backoff', 'stopping', 'stopped', 'exited', 'failed'];

export interface ServiceExitInfo {
  readonly code: number | null;
  readonly signal: string | null;
  /** ISO 8601. */
  readonly at: string;
}

export interface ServiceInfo {
  readonly name: string;
  readonly state: ServiceState;
  /** The command's pid while it runs. */
  readonly pid: number | null;
  /** Every live member of its tree (the command and what it started). */
  readonly pids: readonly number[];
  /** ISO 8601 start of the current run. */
  readonly started_at: string | null;
  readonly uptime_ms: number | null;
  /** Automatic restarts since the service was last started by hand. */
  readonly restarts: number;
  /** CPU use of the whole tree since the last sample, in percent of one CPU. */
  readonly cpu_percent: number | null;
  /** Resident memory of the whole tree, in bytes. */
  readonly memory_bytes: number | null;
  readonly ports: readonly number[];
  /** Whether the readiness check passed in this run; null when it has none. */
  readonly ready: boolean | null;
  readonly unresponsive: boolean;
  /** Why it is in its state (failed, exited, backoff, unresponsive), in words. */
  readonly reason: string | null;
  /** Should be running: a daemon that starts (after a crash, a reboot or \`tend daemon stop\`) starts it again. */
  readonly wanted: boolean;
  readonly last_exit: ServiceExitInfo | null;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  /** Where its output goes. */
  readonly log: string | null;
  readonly restart: RestartPolicy;
  readonly exempt_from_limit: boolean;
  /** The tree's TEND_ID while it runs. */
  readonly handle: string | null;
  readonly strategy: string | null;
}

/** A process tend stopped to free a port (`--free-port`, `--force`). */
export interface FreedPort {
  readonly port: number;
  readonly pid: number;
  readonly command: string | undefined;
  /** Whether it was tend's (carried a TEND_ID marker). */
  readonly tend: boolean;
}

/** The result of `tend start`. */
export interface StartReport {
  readonly service: ServiceInfo;
  /** Already running with the same definition: nothing was done. */
  readonly already_running: boolean;
  readonly freed: readonly FreedPort[];
}

/** The JSON of `tend kill-all --json`, in the words of the limit's status. */
export interface KillAllReport {
  readonly killed_count: number;
  readonly killed_pids: readonly number[];
  readonly services: readonly string[];
  /** Starts that were waiting for a slot and were refused. */
  readonly dequeued: number;
}
