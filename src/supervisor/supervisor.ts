/**
 * The service layer: named services on top of one ProcessManager, with
 * restart policies, readiness, dependencies, declared ports, the concurrency
 * limit, logs and PID files. The daemon serves it over its socket, `tend up`
 * runs it in the foreground, and the HTTP API reuses it.
 *
 * Each service runs at most one tree at a time. Every run has a generation
 * number: a stop bumps it, so work still in flight for an older run (a
 * readiness wait, a backoff timer, a spawn) sees it is stale and undoes
 * itself instead of acting on the new one.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { TendError, errnoOf, isTendError } from '../core/errors.js';
import type { FinalStatus, ProcessSpec } from '../core/types.js';
import type { ProcessHandle } from '../manager/process-handle.js';
import type { ProcessManager } from '../manager/process-manager.js';
import { waitIdentityGone } from '../platform/identity.js';
import { findPortHolders, type PortHolder } from '../platform/ports.js';
import type { ProcessTable } from '../platform/proc-table.js';
import { sendSignal } from '../platform/signal.js';
import { readUsage } from '../platform/usage.js';
import { readTreeUsage } from '../manager/tree-usage.js';
import { writeFileAtomicSync } from '../registry/atomic-file.js';
import { closest } from '../spawn/normalize-spec.js';
import type { ServiceConfig } from '../service/definition.js';
import { ConcurrencyLimiter, type Lease, type LimiterStatus } from './limiter.js';
import { waitUntilReady, type LineSource } from './readiness.js';
import { RestartTracker } from './restart-policy.js';
import { RotatingLog, type RotatingLogOptions } from './rotating-log.js';
import type { FreedPort, KillAllReport, ServiceExitInfo, ServiceInfo, ServiceState, StartReport } from './service-info.js';
import { sameDefinition, type ServiceStore, type StoredOutcome } from './service-store.js';

export interface SupervisorOptions {
  readonly manager: ProcessManager;
  readonly table: ProcessTable;
  /** Where definitions persist (the daemon); none for `tend up` in the foreground. */
  readonly store?: ServiceStore | undefined;
  /** Default log directory: `<dir>/NAME.log` for services without `log`. None: only services with `log` get a file. */
  readonly logDir?: string | undefined;
  /** PID files `<dir>/NAME.pid`, for other tools. */
  readonly runDir?: string | undefined;
  readonly logOptions?: RotatingLogOptions | undefined;
  readonly maxConcurrent?: number | undefined;
  /** Each line a service prints (the foreground `tend up` shows them). */
  readonly onOutput?: ((service: string, line: string) => void) | undefined;
  /** How often CPU use is sampled for `unresponsive.cpu_window`. */
  readonly sampleIntervalMs?: number | undefined;
  readonly warn?: ((message: string) => void) | undefined;
}

export interface StartOptions {
  /** Wait for a slot under the limit (default), or refuse with LIMIT_REACHED. */
  readonly queue?: boolean | undefined;
  /** Stop a holder of a declared port if it is tend's. */
  readonly freePort?: boolean | undefined;
  /** With freePort: stop any holder, tend's or not. */
  readonly force?: boolean | undefined;
}

export interface SupervisorEvents {
  /** A service changed state. */
  state: [name: string, state: ServiceState];
}

/** Grace given to a port holder tend stops before it is killed. */
const PORT_HOLDER_GRACE_MS = 3000;
/** A CPU sample older than this is replaced when `ps` asks. */
const MIN_SAMPLE_AGE_MS = 200;
/** Probes while checking liveness get this long at most. */
const LIVENESS_PROBE_TIMEOUT_MS = 5000;

interface CpuSample {
  readonly at: number;
  readonly cpuMs: number;
}

class Service {
  wanted = false;
  state: ServiceState = 'stopped';
  reason: string | null = null;
  handle: ProcessHandle | undefined;
  lease: Lease | undefined;
  tracker: RestartTracker;
  restarts = 0;
  lastExit: ServiceExitInfo | null = null;
  ready: boolean | null = null;
  unresponsive = false;
  generation = 0;
  /** Counts interrupts (stop, delete, kill-all): work queued before one is dropped. */
  interrupts = 0;
  /** Aborts the current run's waits (dependencies, queue, readiness). */
  abort: AbortController | undefined;
  /** The current launch, so a stop can wait for it to unwind. */
  launching: Promise<unknown> | undefined;
  backoff: NodeJS.Timeout | undefined;
  log: RotatingLog | undefined;
  readonly lineListeners = new Set<(line: string) => void>();
  /** For `unresponsive.cpu_window`: samples covering the window. */
  cpuSamples: CpuSample[] = [];
  /** For ps/status: the CPU time at the previous look. */
  lookSample: CpuSample | undefined;
  lastPercent: number | null = null;
  probeFailures = 0;
  probeTimer: NodeJS.Timeout | undefined;
  /** Per-service lock: start, stop, restart and delete of one service run one at a time. */
  queue: Promise<unknown> = Promise.resolve();

  constructor(public definition: ServiceConfig) {
    this.tracker = trackerFor(definition);
  }

  get name(): string {
    return this.definition.name;
  }

  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work, work);
    this.queue = result.catch(() => undefined);
    return result;
  }
}

function trackerFor(definition: ServiceConfig): RestartTracker {
  return new RestartTracker({ policy: definition.restart, limit: definition.restartLimit });
}

function describeHolder(holder: PortHolder): string {
  if (holder.pid === null) return `a socket on ${holder.address} whose process tend cannot see (another user's, or another network namespace's)`;
  return `pid ${holder.pid} (${holder.command ?? '?'})${holder.tendHandle ? `, a tend-managed process (TEND_ID=${holder.tendHandle})` : ', not tend\'s'}`;
}

/** What differs between two definitions, in words: field names, and variable names for env. */
function definitionDifferences(before: ServiceConfig, after: ServiceConfig): string {
  const differences: string[] = [];
  for (const key of Object.keys(after) as (keyof ServiceConfig)[]) {
    if (key === 'env') {
      const names = new Set([...Object.keys(before.env), ...Object.keys(after.env)]);
      const changed = [...names].filter((n) => before.env[n] !== after.env[n]);
      if (changed.length > 0) differences.push(`env ${changed.slice(0, 5).join(', ')}${changed.length > 5 ? `, and ${changed.length - 5} more` : ''}`);
    } else if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) {
      differences.push(key);
    }
  }
  return differences.join('; ') || 'none';
}

function exitReason(status: FinalStatus): string {
  if (status.state === 'exited') return `exit code ${status.exitCode}`;
  if (status.state === 'terminated') return `killed by ${status.signal}`;
  return status.error.message;
}

export class Supervisor extends EventEmitter<SupervisorEvents> {
  readonly #services = new Map<string, Service>();
  readonly #manager: ProcessManager;
  readonly #table: ProcessTable;
  readonly #limiter: ConcurrencyLimiter;
  readonly #options: SupervisorOptions;
  #sampler: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: SupervisorOptions) {
    super();
    this.#options = options;
    this.#manager = options.manager;
    this.#table = options.table;
    this.#limiter = new ConcurrencyLimiter(options.maxConcurrent);
    if (options.logDir) mkdirSync(options.logDir, { recursive: true, mode: 0o700 });
    if (options.runDir) mkdirSync(options.runDir, { recursive: true, mode: 0o700 });
  }

  // -------------------------------------------------------------------------
  // Queries

  names(): string[] {
    return [...this.#services.keys()];
  }

  has(name: string): boolean {
    return this.#services.has(name);
  }

  definition(name: string): ServiceConfig {
    return this.#get(name).definition;
  }

  list(): ServiceInfo[] {
    const now = Date.now();
    return [...this.#services.values()].map((s) => this.#info(s, now));
  }

  /** The state alone, without the /proc reads of info(). */
  stateOf(name: string): ServiceState {
    return this.#get(name).state;
  }

  info(name: string): ServiceInfo {
    return this.#info(this.#get(name), Date.now());
  }

  /** The file a service's output goes to, if any. */
  logPath(name: string): string | undefined {
    return this.#logPathOf(this.#get(name).definition);
  }

  limitStatus(): LimiterStatus {
    return this.#limiter.status();
  }

  setLimit(max: number): { old_limit: number; new_limit: number } {
    const old = this.#limiter.setMax(max);
    return { old_limit: old, new_limit: this.#limiter.max };
  }

  // -------------------------------------------------------------------------
  // Definitions

  /**
   * Adds or replaces a definition. Replacing the definition of a running
   * service is refused (SERVICE_RUNNING) unless it is the same.
   */
  define(definition: ServiceConfig, wanted?: boolean, outcome?: StoredOutcome): void {
    this.#checkNoCycle(definition);
    const existing = this.#services.get(definition.name);
    if (existing) {
      if (!sameDefinition(existing.definition, definition)) {
        if (existing.handle || existing.launching) {
          throw new TendError('SERVICE_RUNNING', { name: definition.name, differences: definitionDifferences(existing.definition, definition) });
        }
        existing.definition = definition;
        existing.tracker = trackerFor(definition);
        existing.log?.close();
        existing.log = undefined;
      }
      if (wanted !== undefined) existing.wanted = wanted;
      this.#persist(existing);
      return;
    }
    const service = new Service(definition);
    if (wanted !== undefined) service.wanted = wanted;
    if (outcome) {
      service.state = outcome.state;
      service.reason = outcome.reason;
      service.restarts = outcome.restarts;
      service.lastExit = outcome.lastExit;
    }
    this.#services.set(definition.name, service);
    this.#persist(service);
    this.emit('state', definition.name, service.state);
  }

  // -------------------------------------------------------------------------
  // Commands

  /**
   * Starts a defined service (and the services it depends on that are not
   * running). Resolves once it runs and, if it has a readiness check, is
   * ready; rejects when it cannot start or get ready.
   */
  async start(name: string, options: StartOptions = {}): Promise<StartReport> {
    const service = this.#get(name);
    this.#startDependencies(service, options);
    const epoch = service.interrupts;
    return service.exclusive(async () => {
      this.#checkStillWanted(service, epoch);
      if (service.handle || service.backoff) {
        service.wanted = true;
        this.#persist(service);
        return { service: this.#info(service, Date.now()), alreadyRunning: true, freed: [] };
      }
      return this.#startNow(service, options);
    });
  }

  /** Dependencies that are not running are started too; a port of theirs is freed only by their own start. */
  #startDependencies(service: Service, options: StartOptions): void {
    for (const dependency of this.#dependencyClosure(service)) {
      if (dependency !== service && !dependency.wanted) void this.start(dependency.name, { queue: options.queue }).catch(() => undefined);
    }
  }

  async #startNow(service: Service, options: StartOptions): Promise<StartReport> {
    service.wanted = true;
    service.tracker.reset();
    service.restarts = 0;
    this.#persist(service);
    const freed = await this.#launch(service, options);
    return { service: this.#info(service, Date.now()), alreadyRunning: false, freed };
  }

  /**
   * Work waits for the service's lock; a stop, delete or kill-all that came
   * after it was queued wins, and a deleted service starts nothing.
   */
  #checkStillWanted(service: Service, epoch: number): void {
    if (this.#services.get(service.name) !== service) throw new TendError('SERVICE_UNKNOWN', { name: service.name, known: this.names().join(', ') || undefined });
    if (service.interrupts !== epoch) throw new TendError('SERVICE_START_FAILED', { name: service.name, reason: 'it was stopped before it started' });
  }

  /** Stops services (their whole trees); they stay defined, as stopped. Services that others depend on are stopped last. */
  async stop(names: readonly string[], options: { timeoutMs?: number | undefined; forget?: boolean } = {}): Promise<ServiceInfo[]> {
    const services = names.map((n) => this.#get(n));
    // Interrupt a start that waits (queue, dependencies, readiness) now, not after it took the lock for the whole wait.
    for (const service of services) this.#interrupt(service);
    for (const wave of this.#stopWaves(services)) {
      await Promise.all(wave.map((s) => s.exclusive(() => this.#stop(s, options.timeoutMs, options.forget !== false))));
    }
    const now = Date.now();
    return services.map((s) => this.#info(s, now));
  }

  /** How long stopping every running service may take: the waves run one after another, each as long as its slowest stop timeout. */
  stopBudgetMs(): number {
    const running = [...this.#services.values()].filter((s) => s.handle !== undefined);
    return this.#stopWaves(running).reduce((sum, wave) => sum + Math.max(0, ...wave.map((s) => s.definition.stopTimeoutMs)), 0);
  }

  async stopAll(options: { timeoutMs?: number | undefined; forget?: boolean } = {}): Promise<ServiceInfo[]> {
    return this.stop(this.names(), options);
  }

  async restart(name: string, options: StartOptions & { timeoutMs?: number | undefined } = {}): Promise<StartReport> {
    const service = this.#get(name);
    this.#interrupt(service);
    this.#startDependencies(service, options);
    const epoch = service.interrupts;
    // One body for stop and start: a stop that comes meanwhile waits for both, then wins.
    return service.exclusive(async () => {
      this.#checkStillWanted(service, epoch);
      await this.#stop(service, options.timeoutMs, false);
      return this.#startNow(service, options);
    });
  }

  /** Stops the service and forgets its definition (its log files stay). */
  async delete(name: string, options: { timeoutMs?: number | undefined } = {}): Promise<ServiceInfo> {
    const service = this.#get(name);
    this.#interrupt(service);
    return service.exclusive(async () => {
      await this.#stop(service, options.timeoutMs, true);
      const info = this.#info(service, Date.now());
      this.#services.delete(name);
      this.#options.store?.remove(name);
      service.log?.close();
      service.log = undefined;
      return info;
    });
  }

  /** Everything now: queued starts are refused, every tree is killed (SIGKILL), every service marked stopped. */
  async killAll(): Promise<KillAllReport> {
    const dequeued = this.#limiter.drainQueue(new TendError('LIMIT_REACHED', { key: 'kill-all', active: 0, max: this.#limiter.max }));
    const services = [...this.#services.values()];
    const pids = new Set<number>();
    const killed: string[] = [];
    const kill = (service: Service, handle: ProcessHandle): Promise<unknown> => {
      const members = handle.members();
      for (const pid of members) pids.add(pid);
      if (members.length > 0 && !killed.includes(service.name)) killed.push(service.name);
      return handle.stop({ signal: 'SIGKILL' });
    };
    await Promise.all(
      services.map(async (service) => {
        this.#interrupt(service);
        service.wanted = false;
        this.#persist(service);
        // Now, even while a graceful stop holds the service's lock: SIGKILL escalates it.
        if (service.handle) void kill(service, service.handle).catch(() => undefined);
        await service.exclusive(async () => {
          const handle = service.handle;
          if (handle) {
            this.#setState(service, 'stopping', 'kill-all');
            await kill(service, handle);
            this.#onExit(service, handle, await handle.wait());
            this.#setState(service, 'stopped', 'kill-all');
          } else if (service.state === 'queued' || service.state === 'starting' || service.state === 'backoff') {
            this.#setState(service, 'stopped', 'kill-all');
          }
        });
      }),
    );
    return { killed_count: pids.size, killed_pids: [...pids].sort((a, b) => a - b), services: killed.sort(), dequeued };
  }

  /** Starts every service that should be running (the daemon, after a restart), each after its dependencies. */
  restoreWanted(): void {
    const wanted = [...this.#services.values()].filter((s) => s.wanted);
    // All queued first: a dependency restored later must not look ended (its stored outcome) to a dependent restored sooner.
    for (const service of wanted) this.#setState(service, 'queued', null);
    for (const service of wanted) {
      const epoch = service.interrupts;
      void service
        .exclusive(() => {
          this.#checkStillWanted(service, epoch);
          return this.#launch(service, {});
        })
        .catch((error: unknown) => {
          this.#options.warn?.(`could not restore service ${service.name}: ${(error as Error).message}`);
        });
    }
  }

  /** Stops everything. With `forget: false` (a daemon shutting down by signal) the services stay wanted, for the next daemon. */
  async close(options: { forget: boolean; timeoutMs?: number | undefined }): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sampler) clearInterval(this.#sampler);
    this.#limiter.drainQueue(new TendError('MANAGER_CLOSED'));
    await this.stop(this.names(), { timeoutMs: options.timeoutMs, forget: options.forget });
    for (const service of this.#services.values()) service.log?.close();
  }

  // -------------------------------------------------------------------------
  // Running one service

  async #launch(service: Service, options: StartOptions): Promise<FreedPort[]> {
    if (this.#closed) throw new TendError('MANAGER_CLOSED');
    const generation = ++service.generation;
    const abort = new AbortController();
    service.abort = abort;
    const stale = (): boolean => service.generation !== generation;
    const run = this.#run(service, options, abort.signal, stale);
    service.launching = run;
    try {
      return await run;
    } finally {
      if (service.launching === run) service.launching = undefined;
    }
  }

  async #run(service: Service, options: StartOptions, signal: AbortSignal, stale: () => boolean): Promise<FreedPort[]> {
    const definition = service.definition;
    let lease: Lease | undefined;
    let handle: ProcessHandle | undefined;
    if (service.handle) throw new TendError('SERVICE_START_FAILED', { name: definition.name, reason: `it still runs as pid ${service.handle.pid ?? '?'}` });
    try {
      service.ready = null;
      service.unresponsive = false;
      this.#setState(service, 'queued', null);
      await this.#waitForDependencies(service, signal);
      // Ports first: freeing one may stop a service of ours, which frees a slot under the limit.
      const freed = await this.#clearPorts(service, options);
      lease = await this.#limiter.acquire({ key: definition.name, exempt: definition.exemptFromLimit, queue: options.queue ?? true, signal });
      if (stale()) throw new TendError('SERVICE_START_FAILED', { name: definition.name, reason: 'it was stopped while starting' });
      this.#setState(service, 'starting', null);
      const log = this.#openLog(service);
      const piped = log !== undefined || this.#options.onOutput !== undefined || (definition.ready !== undefined && 'log' in definition.ready);
      handle = await this.#manager.start(this.#specOf(definition, piped));
      // The tree is the service's from here on: a stop that came meanwhile finds it in service.handle.
      service.handle = handle;
      service.lease = lease;
      if (stale()) throw new TendError('SERVICE_START_FAILED', { name: definition.name, reason: 'it was stopped while starting' });
      service.cpuSamples = [];
      service.lookSample = undefined;
      service.lastPercent = null;
      this.#attachOutput(service, handle, log);
      const pid = this.#commandPid(handle);
      if (pid !== undefined) {
        lease.attach(pid);
        this.#writePidFile(definition.name, pid);
      }
      const started = handle;
      void handle.wait().then((status) => this.#onExit(service, started, status));
      if (definition.ready) {
        try {
          await waitUntilReady(definition.ready, { signal, logLines: this.#lineSource(service) });
        } catch (error) {
          if (stale() || service.handle !== started) throw this.#endedWhileStarting(service);
          // Not ready in time: the run is over. No restart: the configuration, not a crash, is the likely cause.
          const reason = error instanceof Error ? error.message : String(error);
          service.generation++;
          service.wanted = false;
          this.#persist(service);
          this.#setState(service, 'stopping', null);
          await started.stop();
          this.#onExit(service, started, await started.wait());
          this.#setState(service, 'failed', `not ready: ${reason}`);
          throw new TendError('SERVICE_NOT_READY', { name: definition.name, reason });
        }
        service.ready = true;
      }
      // It exited (or was stopped) while getting ready: #onExit has decided what follows.
      if (stale() || service.handle !== started) throw this.#endedWhileStarting(service);
      this.#setState(service, 'running', null);
      this.#watchHealth(service);
      return freed;
    } catch (error) {
      if (!handle) {
        lease?.release();
        if (!stale()) {
          service.wanted = false;
          this.#persist(service);
          const refused = isTendError(error, 'LIMIT_REACHED');
          this.#setState(service, refused ? 'stopped' : 'failed', error instanceof Error ? error.message : String(error));
        }
      }
      throw error;
    }
  }

  #specOf(definition: ServiceConfig, piped: boolean): ProcessSpec {
    return {
      name: definition.name,
      command: definition.command,
      args: [...definition.args],
      cwd: definition.cwd,
      env: { ...definition.env },
      inheritEnv: Array.isArray(definition.inheritEnv) ? [...(definition.inheritEnv as string[])] : (definition.inheritEnv),
      stdio: piped ? 'pipe' : 'ignore',
      stopSignal: definition.stopSignal,
      stopTimeoutMs: definition.stopTimeoutMs,
      strategy: definition.strategy,
    };
  }

  /** The command's own pid (for pidns, not the namespace's init). */
  #commandPid(handle: ProcessHandle): number | undefined {
    const status = handle.status();
    return status.state === 'running' ? status.pid : handle.pid;
  }

  #onExit(service: Service, handle: ProcessHandle, status: FinalStatus): void {
    if (service.handle !== handle) return;
    service.handle = undefined;
    service.lease?.release();
    service.lease = undefined;
    this.#stopHealth(service);
    this.#removePidFile(service.name);
    const exitedAt = Date.now();
    const code = status.state === 'exited' ? status.exitCode : null;
    const signal = status.state === 'terminated' ? status.signal : null;
    service.lastExit = { code, signal, at: new Date(exitedAt).toISOString() };
    // A stop in progress (#stop) decides the state itself.
    if (service.state === 'stopping') return;
    // The exit ends any wait of this run (readiness): its launch unwinds as stale.
    service.generation++;
    service.abort?.abort(new Error(`it exited (${exitReason(status)})`));
    const decision = service.tracker.decideAfterExit({ startedAt: handle.startedAt.getTime(), exitedAt, code, signal, requestedByUser: false });
    if (decision.kind === 'restart') {
      service.restarts++;
      this.#setState(service, 'backoff', `${exitReason(status)}; restart ${decision.attempt} in ${decision.delayMs} ms`);
      const epoch = service.interrupts;
      service.backoff = setTimeout(() => {
        service.backoff = undefined;
        void service
          .exclusive(() => {
            this.#checkStillWanted(service, epoch);
            return this.#launch(service, {});
          })
          .catch(() => undefined);
      }, decision.delayMs);
      return;
    }
    service.wanted = false;
    this.#persist(service);
    if (decision.kind === 'failed') this.#setState(service, 'failed', decision.reason);
    else this.#setState(service, 'exited', `${exitReason(status)} (${decision.reason})`);
  }

  /** Why a start did not complete, once its run went stale: stopped, or exited (and maybe restarting). */
  #endedWhileStarting(service: Service): TendError {
    const stopped = service.state === 'stopping' || service.state === 'stopped';
    const reason = stopped ? 'it was stopped while starting' : `it ended before it was ready (${service.reason ?? service.state}); see \`tend logs ${service.name}\``;
    return new TendError('SERVICE_START_FAILED', { name: service.name, reason });
  }

  /** Makes the current run stale: its waits end, its backoff timer is cancelled. */
  #interrupt(service: Service): void {
    service.interrupts++;
    service.generation++;
    service.abort?.abort(new Error('stopped'));
    this.#clearBackoff(service);
  }

  /** Runs under the service's lock, so no launch of it is in flight. */
  async #stop(service: Service, timeoutMs: number | undefined, forget: boolean): Promise<void> {
    this.#interrupt(service);
    if (forget) {
      service.wanted = false;
      this.#persist(service);
    }
    const handle = service.handle;
    if (handle) {
      this.#setState(service, 'stopping', null);
      await handle.stop(timeoutMs === undefined ? {} : { timeoutMs });
      this.#onExit(service, handle, await handle.wait());
    }
    if (handle || service.state === 'backoff' || service.state === 'queued') this.#setState(service, 'stopped', 'stopped by user');
  }

  #clearBackoff(service: Service): void {
    if (service.backoff) clearTimeout(service.backoff);
    service.backoff = undefined;
  }

  // -------------------------------------------------------------------------
  // Dependencies

  /** A dependency cycle would leave every service in it queued forever: refused when defined. */
  #checkNoCycle(definition: ServiceConfig): void {
    const dependsOn = (name: string): readonly string[] => (name === definition.name ? definition.dependsOn : (this.#services.get(name)?.definition.dependsOn ?? []));
    const path: string[] = [];
    const visit = (name: string): void => {
      if (path.includes(name)) {
        const cycle = [...path.slice(path.indexOf(name)), name].join(' -> ');
        throw new TendError('SPEC_OPTION_INVALID', { field: `${definition.name}.dependsOn`, expected: `no dependency cycle (found ${cycle})`, value: definition.dependsOn });
      }
      path.push(name);
      for (const next of dependsOn(name)) visit(next);
      path.pop();
    };
    visit(definition.name);
  }

  #dependencyClosure(service: Service): Service[] {
    const seen = new Set<Service>();
    const visit = (s: Service): void => {
      if (seen.has(s)) return;
      seen.add(s);
      for (const name of s.definition.dependsOn) {
        const dependency = this.#services.get(name);
        if (dependency) visit(dependency);
      }
    };
    visit(service);
    return [...seen];
  }

  /** Resolves once every dependency runs (and is ready); rejects with DEPENDENCY_FAILED when one ends instead. */
  async #waitForDependencies(service: Service, signal: AbortSignal): Promise<void> {
    for (const name of service.definition.dependsOn) {
      const dependency = this.#services.get(name);
      if (!dependency) {
        throw new TendError('DEPENDENCY_FAILED', { name: service.name, dependency: name, state: 'not defined', reason: undefined });
      }
      await new Promise<void>((resolve, reject) => {
        const check = (): boolean => {
          if (dependency.state === 'running') return finish();
          if (dependency.state === 'failed' || dependency.state === 'exited' || (dependency.state === 'stopped' && !dependency.wanted)) {
            return finish(new TendError('DEPENDENCY_FAILED', { name: service.name, dependency: name, state: dependency.state, reason: dependency.reason ?? undefined }));
          }
          return false;
        };
        const onState = (changed: string): void => {
          if (changed === name) check();
        };
        const onAbort = (): void => void finish(signal.reason);
        const finish = (error?: unknown): true => {
          this.off('state', onState);
          signal.removeEventListener('abort', onAbort);
          if (error === undefined) resolve();
          else reject(error instanceof Error ? error : new Error('the start was interrupted'));
          return true;
        };
        if (signal.aborted) return void finish(signal.reason);
        if (check()) return;
        this.on('state', onState);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  /** Groups to stop one after another: a service is stopped only after every service that depends on it. */
  #stopWaves(services: readonly Service[]): Service[][] {
    const remaining = new Set(services);
    const waves: Service[][] = [];
    while (remaining.size > 0) {
      const wave = [...remaining].filter((s) => ![...remaining].some((other) => other !== s && other.definition.dependsOn.includes(s.name)));
      // A cycle (impossible from a checked config) must not loop forever: stop the rest together.
      const next = wave.length > 0 ? wave : [...remaining];
      for (const s of next) remaining.delete(s);
      waves.push(next);
    }
    return waves;
  }

  // -------------------------------------------------------------------------
  // Ports

  /** Refuses (PORT_IN_USE) or frees each declared port that is held. */
  async #clearPorts(service: Service, options: StartOptions): Promise<FreedPort[]> {
    const freed: FreedPort[] = [];
    for (const port of service.definition.ports) {
      const holders = findPortHolders(port, this.#table);
      if (holders.length === 0) continue;
      const invisible = holders.filter((h) => h.pid === null);
      const foreign = holders.filter((h) => h.pid !== null && h.tendHandle === undefined);
      const refuse = (fix: string): never => {
        throw new TendError('PORT_IN_USE', { name: service.name, port, holders: holders.map(describeHolder).join('; '), fix });
      };
      if (!options.freePort) refuse(`Stop it, or start with --free-port to stop it if it is tend's (--free-port --force stops any holder).`);
      if (invisible.length > 0) refuse('tend cannot see or stop that holder; stop it as its owner.');
      if (foreign.length > 0 && !options.force) refuse('It is not tend\'s, so --free-port leaves it alone; add --force to stop it anyway.');
      for (const holder of holders) {
        const stopped = await this.#stopHolder(holder);
        if (stopped) freed.push({ port, pid: holder.pid as number, command: holder.command, tend: holder.tendHandle !== undefined });
      }
      if (findPortHolders(port, this.#table).length > 0) refuse('It was signalled but still holds the port.');
    }
    return freed;
  }

  /** Stops one holder, identity-checked: a service of ours is stopped whole; any other process gets SIGTERM, then SIGKILL. */
  async #stopHolder(holder: PortHolder): Promise<boolean> {
    const owner = [...this.#services.values()].find((s) => s.handle !== undefined && s.handle.id === holder.tendHandle);
    if (owner) {
      this.#interrupt(owner);
      await owner.exclusive(() => this.#stop(owner, undefined, true));
      return true;
    }
    if (holder.pid === null || holder.startTime === undefined) return false;
    const identity = { pid: holder.pid, startTime: holder.startTime, bootId: this.#table.bootId() };
    if (!sendSignal(this.#table, { kind: 'process', identity }, 'SIGTERM')) return true;
    if (!(await waitIdentityGone(this.#table, identity, PORT_HOLDER_GRACE_MS))) sendSignal(this.#table, { kind: 'process', identity }, 'SIGKILL');
    return true;
  }

  // -------------------------------------------------------------------------
  // Output, logs, PID files

  #logPathOf(definition: ServiceConfig): string | undefined {
    if (definition.log) return definition.log;
    return this.#options.logDir ? join(this.#options.logDir, `${definition.name}.log`) : undefined;
  }

  #openLog(service: Service): RotatingLog | undefined {
    if (service.log) return service.log;
    const path = this.#logPathOf(service.definition);
    if (path === undefined) return undefined;
    let warned = false;
    service.log = new RotatingLog(path, {
      ...this.#options.logOptions,
      onError: (error) => {
        if (!warned) this.#options.warn?.(`log of ${service.name} (${path}): ${(error as Error).message}`);
        warned = true;
      },
    });
    return service.log;
  }

  #attachOutput(service: Service, handle: ProcessHandle, log: RotatingLog | undefined): void {
    const onOutput = this.#options.onOutput;
    for (const stream of [handle.stdout, handle.stderr]) {
      if (!stream) continue;
      let partial = '';
      stream.on('data', (chunk: Buffer) => {
        log?.write(chunk);
        if (!onOutput && service.lineListeners.size === 0) return;
        const text = partial + chunk.toString('utf8');
        const lines = text.split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) this.#emitLine(service, line);
      });
      stream.on('end', () => {
        if (partial !== '') this.#emitLine(service, partial);
        partial = '';
      });
      stream.on('error', () => undefined);
    }
  }

  #emitLine(service: Service, line: string): void {
    this.#options.onOutput?.(service.name, line);
    for (const listener of service.lineListeners) listener(line);
  }

  #lineSource(service: Service): LineSource {
    return (onLine) => {
      service.lineListeners.add(onLine);
      return () => service.lineListeners.delete(onLine);
    };
  }

  #writePidFile(name: string, pid: number): void {
    if (!this.#options.runDir) return;
    try {
      writeFileAtomicSync(join(this.#options.runDir, `${name}.pid`), `${pid}\n`);
    } catch (error) {
      this.#options.warn?.(`could not write the PID file of ${name}: ${(error as Error).message}`);
    }
  }

  #removePidFile(name: string): void {
    if (!this.#options.runDir) return;
    try {
      unlinkSync(join(this.#options.runDir, `${name}.pid`));
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') this.#options.warn?.(`could not remove the PID file of ${name}: ${(error as Error).message}`);
    }
  }

  // -------------------------------------------------------------------------
  // Health: CPU pinned for a window, or liveness probes failing in a row

  #watchHealth(service: Service): void {
    const config = service.definition.unresponsive;
    if (!config) return;
    if (config.cpuWindowMs !== undefined && !this.#sampler) {
      this.#sampler = setInterval(() => this.#sampleAll(), this.#options.sampleIntervalMs ?? 1000);
      this.#sampler.unref();
    }
    const check = service.definition.ready;
    if (config.probeIntervalMs !== undefined && check) {
      const generation = service.generation;
      const probe = async (): Promise<void> => {
        service.probeTimer = undefined;
        if (service.generation !== generation || !service.handle) return;
        const abort = new AbortController();
        try {
          await waitUntilReady({ ...check, timeoutMs: Math.min(check.timeoutMs, LIVENESS_PROBE_TIMEOUT_MS) }, { signal: abort.signal, logLines: () => () => undefined });
          service.probeFailures = 0;
          if (!this.#cpuPinned(service)) this.#markResponsive(service);
        } catch {
          if (service.generation !== generation) return;
          service.probeFailures++;
          if (service.probeFailures >= config.probeFailures) this.#markUnresponsive(service, `readiness check failed ${service.probeFailures} times in a row`);
        }
        if (service.generation === generation && service.handle) {
          service.probeTimer = setTimeout(() => void probe(), config.probeIntervalMs);
          service.probeTimer.unref();
        }
      };
      // A log check proves readiness once; it cannot be re-run against past output.
      if (!('log' in check)) {
        service.probeTimer = setTimeout(() => void probe(), config.probeIntervalMs);
        service.probeTimer.unref();
      }
    }
  }

  #stopHealth(service: Service): void {
    if (service.probeTimer) clearTimeout(service.probeTimer);
    service.probeTimer = undefined;
    service.probeFailures = 0;
    service.cpuSamples = [];
  }

  #sampleAll(): void {
    const now = Date.now();
    let watching = false;
    for (const service of this.#services.values()) {
      const window = service.definition.unresponsive?.cpuWindowMs;
      if (window === undefined || !service.handle || service.state !== 'running') continue;
      watching = true;
      const usage = readUsage(service.handle.members());
      service.cpuSamples.push({ at: now, cpuMs: usage.cpuMs });
      while (service.cpuSamples.length > 1 && now - (service.cpuSamples[1] as CpuSample).at >= window) service.cpuSamples.shift();
      if (this.#cpuPinned(service)) this.#markUnresponsive(service, `CPU at 100% for ${window} ms`);
      else if (service.probeFailures === 0) this.#markResponsive(service);
    }
    if (!watching && this.#sampler) {
      clearInterval(this.#sampler);
      this.#sampler = undefined;
    }
  }

  /** Pinned: over a span at least as long as the window, the tree used (nearly) one whole CPU. */
  #cpuPinned(service: Service): boolean {
    const window = service.definition.unresponsive?.cpuWindowMs;
    const first = service.cpuSamples[0];
    const last = service.cpuSamples[service.cpuSamples.length - 1];
    if (window === undefined || !first || !last || last.at - first.at < window) return false;
    return (last.cpuMs - first.cpuMs) / (last.at - first.at) >= 0.95;
  }

  #markUnresponsive(service: Service, reason: string): void {
    if (service.unresponsive) return;
    service.unresponsive = true;
    service.reason = reason;
    this.emit('state', service.name, service.state);
    if (service.definition.unresponsive?.restart) {
      this.#options.warn?.(`service ${service.name} is unresponsive (${reason}): restarting it`);
      const epoch = service.interrupts;
      void service
        .exclusive(async () => {
          this.#checkStillWanted(service, epoch);
          await this.#stop(service, undefined, false);
          service.restarts++;
          await this.#launch(service, {});
        })
        .catch(() => undefined);
    }
  }

  #markResponsive(service: Service): void {
    if (!service.unresponsive) return;
    service.unresponsive = false;
    service.reason = null;
    this.emit('state', service.name, service.state);
  }

  // -------------------------------------------------------------------------

  #get(name: string): Service {
    const service = this.#services.get(name);
    if (!service) {
      const known = this.names();
      throw new TendError('SERVICE_UNKNOWN', { name, known: known.length > 0 ? known.join(', ') : undefined, suggestion: closest(name, known) });
    }
    return service;
  }

  #setState(service: Service, state: ServiceState, reason: string | null): void {
    service.state = state;
    service.reason = reason;
    // How it ended is kept with the definition, so that a new daemon can still say why.
    if (state === 'stopped' || state === 'exited' || state === 'failed') this.#persist(service);
    this.emit('state', service.name, state);
  }

  #persist(service: Service): void {
    try {
      const ended = service.state === 'stopped' || service.state === 'exited' || service.state === 'failed';
      const outcome = ended ? { state: service.state as StoredOutcome['state'], reason: service.reason, restarts: service.restarts, lastExit: service.lastExit } : undefined;
      this.#options.store?.save({ definition: service.definition, wanted: service.wanted, outcome });
    } catch (error) {
      this.#options.warn?.(`could not save service ${service.name}: ${(error as Error).message}`);
    }
  }

  #info(service: Service, now: number): ServiceInfo {
    const definition = service.definition;
    const handle = service.handle;
    let pid: number | null = null;
    let pids: number[] = [];
    let cpuPercent: number | null = null;
    let memoryBytes: number | null = null;
    if (handle) {
      const usage = readTreeUsage(handle);
      pid = usage.pid ?? null;
      pids = usage.pids;
      memoryBytes = usage.rssBytes;
      // CPU since the previous look (or since start): its own sample, apart from the health sampler's.
      const last = service.lookSample;
      if (last && now - last.at < MIN_SAMPLE_AGE_MS) {
        cpuPercent = service.lastPercent;
      } else {
        const since = last ?? { at: handle.startedAt.getTime(), cpuMs: 0 };
        const span = Math.max(now - since.at, 1);
        cpuPercent = Math.round(((usage.cpuMs - since.cpuMs) / span) * 1000) / 10;
        service.lastPercent = cpuPercent;
        service.lookSample = { at: now, cpuMs: usage.cpuMs };
      }
    }
    return {
      name: definition.name,
      state: service.state,
      pid,
      pids,
      startedAt: handle ? handle.startedAt.toISOString() : null,
      uptimeMs: handle ? now - handle.startedAt.getTime() : null,
      restarts: service.restarts,
      cpuPercent,
      memoryBytes,
      ports: definition.ports,
      ready: definition.ready ? service.ready === true : null,
      unresponsive: service.unresponsive,
      reason: service.reason,
      lastExit: service.lastExit,
      command: definition.command,
      args: definition.args,
      cwd: definition.cwd,
      log: this.#logPathOf(definition) ?? null,
      restart: definition.restart,
      exemptFromLimit: definition.exemptFromLimit,
      handle: handle?.id ?? null,
      strategy: handle?.strategy ?? null,
    };
  }
}

