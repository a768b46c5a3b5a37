import { spawn, type StdioOptions } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { closeSync, existsSync, openSync } from 'node:fs';
import { TendError, errnoOf, isTendError } from '../core/errors.js';
import { parseSignal, type SignalName } from '../core/signals.js';
import {
  MARKER_VARIABLE,
  type FinalStatus,
  type NormalizedSpec,
  type ProcessSpec,
  type ProcessStatus,
  type StopOptions,
  type StopResult,
} from '../core/types.js';
import { detect, detectParentDeathSignal, selectStrategy, type Capabilities } from '../platform/detect.js';
import { systemProcessTable, type ProcessTable } from '../platform/proc-table.js';
import { detectPlugins } from '../plugins/node-version.js';
import { PluginRegistry, type ConfigurationPlugin, type PluginWarning } from '../plugins/plugin.js';
import { normalizeSpec, normalizeTimeout } from '../spawn/normalize-spec.js';
import { stopTreesSync } from '../terminate/stop-tree.js';
import { ManagedProcess } from './managed-process.js';
import { ProcessHandle } from './process-handle.js';
import { trackManager, untrackManager } from './host-exit.js';
import type { RecoveryReport } from '../registry/recover.js';
import { Safekeeping } from './safekeeping.js';

export interface ManagerOptions {
  /** Base directory for relative cwd and logFile paths (default: process.cwd()). */
  readonly cwd?: string | undefined;
  /** The environment `inheritEnv` draws from (default: process.env). */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /**
   * Stop every tree when this program gets SIGINT, SIGTERM or SIGHUP and has
   * no other listener for it, then re-raise the signal (default true). Trees
   * are stopped on a normal exit regardless.
   */
  readonly handleSignals?: boolean | undefined;
  /** Directory under which per-tree cgroups are created (default: <own cgroup>/tend). */
  readonly cgroupParent?: string | undefined;
  /** Ignore the native helpers and use the portable sh/setpriv fallbacks. */
  readonly portable?: boolean | undefined;
  /** Kill cgroups by freezing and killing each member instead of cgroup.kill. */
  readonly forceCgroupKillFallback?: boolean | undefined;
  readonly plugins?: readonly ConfigurationPlugin[] | undefined;
  /**
   * Register plugins for the integrations detected on this machine (nvm: a
   * project's .nvmrc puts that Node first on the spec's PATH). Off by default:
   * a spec's environment is exactly what it says unless asked otherwise.
   */
  readonly autoPlugins?: boolean | undefined;
  /** The process table to consult (tests pass a fake). */
  readonly processTable?: ProcessTable | undefined;
  /**
   * Where records, the lifecycle log and manager files live (default:
   * $TEND_HOME, else $XDG_STATE_HOME/tend, else ~/.local/state/tend; taken from
   * `env`). `false` keeps nothing on disk: no records, so no recovery of this
   * manager's trees if both it and its reaper die.
   */
  readonly stateDir?: string | false | undefined;
  /** Start tend-reaper, which kills every tree if this process dies (default true where it is built). */
  readonly reaper?: boolean | undefined;
  /** Clean up trees whose manager died, at create() (default true). The report is `manager.recovery`. */
  readonly recover?: boolean | undefined;
}

export interface ManagerEvents {
  start: [handle: ProcessHandle];
  /** The leader exited while other members of its tree run on. */
  detached: [handle: ProcessHandle];
  /** Nothing of the tree is alive any more. */
  exit: [handle: ProcessHandle, status: FinalStatus];
  warning: [warning: PluginWarning | { plugin?: undefined; message: string; cause?: unknown }];
}

/**
 * Starts process trees from explicit specs and guarantees that none outlives
 * its stop, the manager's exit, or the signals that end the manager.
 */
export class ProcessManager extends EventEmitter<ManagerEvents> {
  readonly #processes = new Map<string, ManagedProcess>();
  readonly #handles = new Map<string, ProcessHandle>();
  readonly #plugins = new PluginRegistry();
  readonly #table: ProcessTable;
  readonly #options: ManagerOptions;
  #closed = false;
  #keeper!: Safekeeping;

  private constructor(options: ManagerOptions) {
    super();
    checkManagerOptions(options);
    this.#options = options;
    this.#table = options.processTable ?? systemProcessTable();
    for (const plugin of options.plugins ?? []) this.#plugins.register(plugin);
    if (options.autoPlugins) for (const plugin of detectPlugins(options.env ?? process.env)) this.#plugins.register(plugin);
  }

  /**
   * Creates a manager: prepares the state directory, cleans up trees whose
   * manager died (recovery), and starts the reaper.
   */
  static async create(options: ManagerOptions = {}): Promise<ProcessManager> {
    const manager = new ProcessManager(options);
    await manager.#init();
    trackManager(manager, options.handleSignals ?? true);
    return manager;
  }

  async #init(): Promise<void> {
    const options = this.#options;
    this.#keeper = await Safekeeping.open({
      stateDir: options.stateDir,
      env: options.env ?? process.env,
      table: this.#table,
      reaper: options.reaper !== false,
      recover: options.recover !== false,
      warn: (message, cause) => this.emit('warning', { message, cause }),
    });
  }

  /** What recovery at create() cleaned up, when it ran. */
  get recovery(): RecoveryReport | undefined {
    return this.#keeper.recovery;
  }

  /** The reaper's pid, while one runs. */
  get reaperPid(): number | undefined {
    return this.#keeper.reaperPid;
  }

  /** What this machine offers (strategies and why not), as used by "auto". */
  capabilities(): Capabilities {
    return detect({ cgroupParent: this.#options.cgroupParent, portable: this.#options.portable });
  }

  registerPlugin(plugin: ConfigurationPlugin): void {
    this.#plugins.register(plugin);
  }

  /** Names of the registered plugins, in the order they run. */
  get plugins(): string[] {
    return this.#plugins.names;
  }

  /**
   * Validates the spec, contains the tree and starts it. Resolves once the
   * child exists and is inside its containment; throws a TendError (and starts
   * nothing) when the spec is invalid or the strategy is unavailable.
   */
  async start(input: ProcessSpec): Promise<ProcessHandle> {
    if (this.#closed) throw new TendError('MANAGER_CLOSED');
    const context = { cwd: this.#options.cwd ?? process.cwd(), env: this.#options.env ?? process.env };
    const enhanced = await this.#plugins.apply(
      input,
      (spec) => normalizeSpec(spec, context),
      (warning) => this.emit('warning', warning),
    );
    const spec = normalizeSpec(enhanced, context);
    if (this.#closed) throw new TendError('MANAGER_CLOSED');
    const strategy = selectStrategy(spec.strategy, this.#options);
    let id = newHandleId();
    while (this.#processes.has(id)) id = newHandleId();
    const pdeath = spec.parentDeathSignal && detectParentDeathSignal(this.#options.portable === true).available;
    const containment = strategy.contain({ handle: id, table: this.#table, parentDeathSignal: pdeath, portable: this.#options.portable === true });
    const managed = new ManagedProcess(id, spec, containment, this.#table, {
      detached: (p) => this.emit('detached', this.#handleOf(p)),
      finished: (p, status) => this.#onFinished(p, status),
      warning: (_p, message, cause) => this.emit('warning', { message, cause }),
      stopped: (p, signal, forced) => this.#keeper.logStop(p.id, signal, forced),
    });
    const handle = new ProcessHandle(this, managed);
    this.#processes.set(id, managed);
    this.#handles.set(id, handle);
    try {
      const record = await this.#keeper.beforeSpawn(managed);
      // shutdown() may have begun while the registration was written: start nothing more.
      if (this.#closed) throw new TendError('MANAGER_CLOSED');
      await this.#spawn(managed, spec);
      this.#keeper.afterSpawn(managed, record);
    } catch (error) {
      const failure: TendError = isTendError(error) ? error : new TendError('START_FAILED', { command: spec.command, reason: (error as Error).message }, { cause: error });
      managed.fail(failure);
      throw failure;
    }
    this.emit('start', handle);
    return handle;
  }

  async #spawn(managed: ManagedProcess, spec: NormalizedSpec): Promise<void> {
    const plan = managed.containment.plan(spec);
    const logFd = spec.logFile === undefined ? undefined : openLog(spec);
    const stdio: StdioOptions =
      logFd !== undefined ? ['ignore', logFd, logFd] : spec.stdio === 'pipe' ? ['pipe', 'pipe', 'pipe'] : [spec.stdio, spec.stdio, spec.stdio];
    if (plan.statusFd) (stdio as unknown[]).push('pipe');
    let child;
    try {
      child = spawn(plan.file, plan.args, {
        argv0: plan.argv0,
        cwd: spec.cwd,
        env: { ...spec.env, [MARKER_VARIABLE]: managed.id },
        stdio,
        // Its own session and process group: terminal signals reach the tree only through tend, and kill(-pgid) reaches all of it.
        detached: true,
        windowsHide: true,
      });
    } finally {
      if (logFd !== undefined) closeSync(logFd);
    }
    if (child.pid === undefined) {
      const [error] = (await once(child, 'error').catch((e: unknown) => [e])) as [Error];
      managed.containment.release();
      throw new TendError('START_FAILED', { command: spec.command, reason: describeSpawnError(error, spec) }, { cause: error });
    }
    const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
    child.on('error', (error) => this.emit('warning', { message: `child ${managed.id}: ${error.message}`, cause: error }));
    // The child is ours and not yet reaped, so its pid cannot have been reused:
    // the start time read now is its own, even if it has already exited (a zombie).
    const entry = this.#table.read(child.pid);
    const identity = { pid: child.pid, startTime: entry?.startTime ?? -1, bootId: this.#table.bootId() };
    managed.attach(child, identity, exited, plan.statusFd);
  }

  #handleOf(managed: ManagedProcess): ProcessHandle {
    const handle = this.#handles.get(managed.id);
    if (!handle) throw new TendError('HANDLE_UNKNOWN', { handle: managed.id });
    return handle;
  }

  #onFinished(managed: ManagedProcess, status: FinalStatus): void {
    const handle = this.#handles.get(managed.id);
    this.#processes.delete(managed.id);
    this.#handles.delete(managed.id);
    this.#keeper.forget(managed.id, describeFinal(status));
    if (handle && status.state !== 'failed') this.emit('exit', handle, status);
  }

  /** A handle object always finds its process; an id string only while the tree is alive (ids are not kept forever). */
  #lookup(handle: ProcessHandle | string): ManagedProcess | undefined {
    return typeof handle === 'string' ? this.#processes.get(handle) : handle.managed;
  }

  #require(handle: ProcessHandle | string): ManagedProcess {
    const managed = this.#lookup(handle);
    if (!managed) throw new TendError('HANDLE_UNKNOWN', { handle: typeof handle === 'string' ? handle : handle.id });
    return managed;
  }

  status(handle: ProcessHandle | string): ProcessStatus {
    return this.#require(handle).status();
  }

  /** Every handle whose tree is not final yet. */
  list(): ProcessHandle[] {
    // A tree leaves #processes the moment it is final.
    return [...this.#processes.values()].map((p) => this.#handleOf(p));
  }

  /** Sends a signal to every member of the tree without stopping it; false when nothing was left to signal. */
  signal(handle: ProcessHandle | string, signal: SignalName | number): boolean {
    const name = parseSignal(signal);
    if (!name) throw new TendError('SPEC_SIGNAL_UNKNOWN', { value: signal, field: 'signal' });
    return this.#require(handle).signal(name);
  }

  /**
   * Stops the whole tree: the stop signal to every member, SIGKILL at the
   * deadline, repeated until no member is left. Idempotent.
   */
  stop(handle: ProcessHandle | string, options: StopOptions = {}): Promise<StopResult> {
    const managed = this.#require(handle);
    const plan = managed.stopPlan;
    const signal = options.signal === undefined ? plan.signal : parseSignal(options.signal);
    if (!signal) throw new TendError('SPEC_SIGNAL_UNKNOWN', { value: options.signal, field: 'signal' });
    const timeoutMs = normalizeTimeout(options.timeoutMs, 'timeoutMs') ?? plan.timeoutMs;
    return managed.stop({ signal, timeoutMs });
  }

  /** Stops every tree at once; one that cannot be stopped does not stop the others. */
  async stopAll(options: StopOptions = {}): Promise<StopResult[]> {
    checkStopOptions(options);
    const settled = await Promise.allSettled([...this.#processes.values()].map((p) => this.stop(p.id, options)));
    const failures = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (failures.length > 0) throw failures.length === 1 ? failures[0] : new AggregateError(failures, `${failures.length} trees could not be stopped`);
    return settled.map((r) => (r as PromiseFulfilledResult<StopResult>).value);
  }

  /** Stops everything and refuses further starts. */
  async shutdown(options: StopOptions = {}): Promise<void> {
    checkStopOptions(options);
    this.#closed = true;
    try {
      await this.stopAll(options);
    } finally {
      this.#keeper.close();
      untrackManager(this);
    }
  }

  /** The host is exiting: stop every tree before it does, without awaiting; `force` skips the grace period. */
  stopAllSync(force = false): void {
    this.#closed = true;
    const live = [...this.#processes.values()];
    stopTreesSync(
      live.map((p) => ({ tree: p.containment, plan: p.stopPlan })),
      force,
    );
    for (const p of live) {
      if (!p.containment.isEmpty()) continue;
      p.containment.release();
      this.#keeper.forgetSync(p.id);
    }
    this.#keeper.closeSync();
  }

  get closed(): boolean {
    return this.#closed;
  }
}

/** Manager options are checked like specs: a clear error naming the option, never a TypeError later. */
function checkManagerOptions(options: ManagerOptions): void {
  const fail = (field: string, expected: string, value: unknown): never => {
    throw new TendError('SPEC_OPTION_INVALID', { field, expected, value });
  };
  if (typeof options !== 'object' || options === null) fail('options', 'an object', options);
  for (const field of ['cwd', 'cgroupParent'] as const) {
    const value = options[field];
    if (value !== undefined && (typeof value !== 'string' || value === '')) fail(field, 'a non-empty path string', value);
  }
  if (options.stateDir !== undefined && options.stateDir !== false && (typeof options.stateDir !== 'string' || options.stateDir === '')) {
    fail('stateDir', 'a directory path or false', options.stateDir);
  }
  for (const field of ['handleSignals', 'portable', 'forceCgroupKillFallback', 'autoPlugins', 'reaper', 'recover'] as const) {
    const value = options[field];
    if (value !== undefined && typeof value !== 'boolean') fail(field, 'a boolean', value);
  }
  if (options.env !== undefined && (typeof options.env !== 'object' || options.env === null)) fail('env', 'an object of strings', options.env);
  if (options.plugins !== undefined && !Array.isArray(options.plugins)) fail('plugins', 'an array of plugins', options.plugins);
}

/** Bad options must fail before anything changes state (a shutdown that closed, then threw, would stop nothing). */
function checkStopOptions(options: StopOptions): void {
  if (options.signal !== undefined && !parseSignal(options.signal)) throw new TendError('SPEC_SIGNAL_UNKNOWN', { value: options.signal, field: 'signal' });
  normalizeTimeout(options.timeoutMs, 'timeoutMs');
}

/** Says which of the spawn's inputs failed: the program or the directory may have gone since validation. */
function describeSpawnError(error: Error, spec: NormalizedSpec): string {
  const errno = errnoOf(error);
  if (errno === 'ENOENT' && !existsSync(spec.cwd)) return `its working directory ${spec.cwd} disappeared after validation`;
  if (errno === 'ENOENT' && !existsSync(spec.file)) return `${spec.file} disappeared after validation`;
  if (errno === 'EAGAIN') return 'the system is out of processes (EAGAIN); wait or raise the limit';
  return `${errno ?? ''} ${error.message}`.trim();
}

function openLog(spec: NormalizedSpec): number {
  try {
    return openSync(spec.logFile as string, 'a', 0o600);
  } catch (error) {
    throw new TendError('SPEC_LOG_FILE_INVALID', { value: spec.logFile, reason: (error as Error).message }, { cause: error });
  }
}

/**
 * 16 hex digits of randomness (64 bits from the platform's CSPRNG, which needs
 * no import: node:crypto would add ~2.5 ms to every CLI start). A collision
 * is still caught: the tree's cgroup is created exclusively, and the manager
 * refuses an id it already holds.
 */
function newHandleId(): string {
  const words = globalThis.crypto.getRandomValues(new Uint32Array(2));
  return Array.from(words, (w) => w.toString(16).padStart(8, '0')).join('');
}

function describeFinal(status: FinalStatus): string {
  switch (status.state) {
    case 'exited':
      return `exited with code ${status.exitCode}`;
    case 'terminated':
      return `terminated by ${status.signal}`;
    case 'failed':
      return `failed: ${status.error.code}`;
  }
}
