import type { TendError } from './errors.js';
import type { SignalName } from './signals.js';

/** How a process tree is contained: strongest first. */
export type StrategyName = 'cgroup' | 'pidns' | 'pgroup';
export type StrategyChoice = StrategyName | 'auto';
export const strategyNames: readonly StrategyName[] = ['cgroup', 'pidns', 'pgroup'];

/** Where the child's stdout and stderr go when no log file is given. */
export type StdioMode = 'ignore' | 'inherit' | 'pipe';

/** The environment variable tend puts in every child to find its whole tree. */
export const MARKER_VARIABLE = 'TEND_ID';

/** What the caller asks for. Only `command` is required. */
export interface ProcessSpec {
  /** Program to run: an absolute path, a relative path (to cwd), or a name looked up in the spec's PATH. */
  command: string;
  args?: readonly string[] | undefined;
  /** Working directory; defaults to the manager's cwd. */
  cwd?: string | undefined;
  /** The child's exact environment (plus the marker variable). Nothing is inherited unless `inheritEnv` says so. */
  env?: Readonly<Record<string, string>> | undefined;
  /** `true` inherits the manager's whole environment, a list inherits just those names; `env` wins over both. */
  inheritEnv?: boolean | readonly string[] | undefined;
  /** stdout and stderr, appended to one file (created 0600). */
  logFile?: string | undefined;
  /** Where output goes without a log file: "ignore" (default), "inherit" or "pipe". */
  stdio?: StdioMode | undefined;
  /** A label for listings and logs. */
  name?: string | undefined;
  /** Sent to every member of the tree on stop (default SIGTERM). */
  stopSignal?: SignalName | number | undefined;
  /** How long stop waits after the stop signal before SIGKILL (default 5000). */
  stopTimeoutMs?: number | undefined;
  /** Containment strategy; "auto" picks the strongest this machine offers. */
  strategy?: StrategyChoice | undefined;
  /** Kill the direct child if the manager dies (Linux, default true where available). */
  parentDeathSignal?: boolean | undefined;
}

/** A spec after validation: every field present and canonical. */
export interface NormalizedSpec {
  readonly command: string;
  /** Absolute path of the program, resolved against the spec's PATH. */
  readonly file: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly logFile: string | undefined;
  readonly stdio: StdioMode;
  readonly name: string | undefined;
  readonly stopSignal: SignalName;
  readonly stopTimeoutMs: number;
  readonly strategy: StrategyChoice;
  readonly parentDeathSignal: boolean;
}

/** Precise status of one managed process tree. */
export type ProcessStatus =
  | { readonly state: 'starting' }
  | { readonly state: 'running'; readonly pid: number; readonly unresponsive: boolean }
  | {
      /** The leader exited but members of its tree are still alive. */
      readonly state: 'running-detached';
      readonly exitCode: number | null;
      readonly signal: SignalName | null;
      readonly childPids: readonly number[];
      readonly unresponsive: boolean;
    }
  | { readonly state: 'exited'; readonly exitCode: number; readonly at: Date }
  | { readonly state: 'terminated'; readonly signal: SignalName; readonly at: Date }
  | { readonly state: 'failed'; readonly error: TendError };

export type ProcessState = ProcessStatus['state'];

/** The states after which nothing of the tree is alive. */
export type FinalStatus = Extract<ProcessStatus, { state: 'exited' | 'terminated' | 'failed' }>;

export function isFinal(status: ProcessStatus): status is FinalStatus {
  return status.state === 'exited' || status.state === 'terminated' || status.state === 'failed';
}

export interface StopOptions {
  /** Signal for the graceful phase (default: the spec's stopSignal). */
  signal?: SignalName | number | undefined;
  /** Milliseconds to wait after the signal before SIGKILL (default: the spec's stopTimeoutMs). */
  timeoutMs?: number | undefined;
}

/** What a stop did, for callers and logs. */
export interface StopResult {
  /** The tree was already gone when stop began. */
  readonly alreadyGone: boolean;
  /** SIGKILL was needed after the graceful phase. */
  readonly forced: boolean;
  readonly status: FinalStatus;
}
