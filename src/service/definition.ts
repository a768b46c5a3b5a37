/**
 * What a service is: the definition the config file, the command line and
 * the daemon's socket all produce. Types and defaults only, so that the
 * daemon and the CLI's start path need not load the YAML parser.
 */
import type { SignalName } from '../core/signals.js';
import type { StrategyChoice } from '../core/types.js';

export type RestartPolicy = 'never' | 'on-failure' | 'always';
export const restartPolicies: readonly RestartPolicy[] = ['never', 'on-failure', 'always'];

/** `restart_limit: { max, backoff, max_backoff }`: give up after `max` restarts; the delay doubles from `backoff` up to `max_backoff`. */
export interface RestartLimit {
  readonly maxRestarts: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
}

/** When a service counts as ready: a TCP port accepts, an HTTP URL answers, or a log line matches (a regex source). */
export type ReadyCheck = ({ readonly tcp: number } | { readonly http: string } | { readonly log: string }) & { readonly timeoutMs: number };

export interface ServiceConfig {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Absolute; relative paths are resolved against the config file's directory. */
  readonly cwd: string;
  /** `env_file` entries first, then `env` (which wins). */
  readonly env: Readonly<Record<string, string>>;
  readonly inheritEnv: boolean | readonly string[];
  /** Absolute path of the log file, if any. */
  readonly log: string | undefined;
  readonly restart: RestartPolicy;
  readonly restartLimit: RestartLimit | undefined;
  readonly ready: ReadyCheck | undefined;
  readonly ports: readonly number[];
  readonly dependsOn: readonly string[];
  readonly stopSignal: SignalName;
  readonly stopTimeoutMs: number;
  readonly strategy: StrategyChoice;
  /** Not counted against the supervisor's limit on concurrent services. */
  readonly exemptFromLimit: boolean;
  /** When a running service counts as unresponsive, and whether that restarts it. */
  readonly unresponsive: UnresponsiveConfig | undefined;
}

/**
 * `unresponsive: { cpu_window, probe_interval, probe_failures, restart }`: a
 * service is unresponsive when its tree uses a whole CPU for `cpu_window`, or
 * when its readiness check, re-run every `probe_interval` once it was ready,
 * fails `probe_failures` times in a row.
 */
export interface UnresponsiveConfig {
  readonly cpuWindowMs: number | undefined;
  readonly probeIntervalMs: number | undefined;
  readonly probeFailures: number;
  /** Restart the service when it becomes unresponsive (otherwise it is only shown). */
  readonly restart: boolean;
}

export interface StackConfig {
  /** The path the config was read from, as given. */
  readonly file: string;
  /** Absolute directory of the config file: relative paths in it are resolved against this. */
  readonly dir: string;
  /** In the order the file declares them. */
  readonly services: readonly ServiceConfig[];
}

export const DEFAULT_READY_TIMEOUT_MS = 30_000;
export const DEFAULT_RESTART_BACKOFF_MS = 1000;
export const DEFAULT_RESTART_MAX_BACKOFF_MS = 30_000;
