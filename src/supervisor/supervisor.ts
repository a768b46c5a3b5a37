/**
 * The service layer: named services on top of one ProcessManager, with
 * restart policies, readiness, dependencies, declared ports, the concurrency
 * limit, logs and PID files. The daemon serves it over its socket, `tend up`
 * runs it in the foreground, and the HTTP API reuses it.
 *
 * This is the command surface: which services exist, and the order commands
 * act on them in (dependencies, stop waves, each service's lock). One
 * service's state machine is the lifecycle's (lifecycle.ts); each start
 * attempt is a Run (run.ts); ports, health and output have their own files.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { TendError } from '../core/errors.js';
import type { ProcessHandle } from '../manager/process-handle.js';
import type { ProcessManager } from '../manager/process-manager.js';
import type { ProcessTable } from '../platform/proc-table.js';
import { readTreeUsage } from '../manager/tree-usage.js';
import { closest } from '../spawn/normalize-spec.js';
import type { ServiceConfig } from '../service/definition.js';
import { dependencyClosure, describeCycle, findCycle, stopWaves, type DependsOn } from '../service/graph.js';
import { Lifecycle, type StartOptions, type SupervisorEvents } from './lifecycle.js';
import { ConcurrencyLimiter, type LimiterStatus } from './limiter.js';
import { WITHDRAWN_REASON } from './run.js';
import { logPathOf } from './output.js';
import type { RotatingLogOptions } from './rotating-log.js';
import type { KillAllReport, ServiceInfo, ServiceState, StartReport } from './service-info.js';
import { sameDefinition, type ServiceStore, type StoredOutcome } from './service-store.js';
import { SupervisedService } from './supervised-service.js';

export type { StartOptions, SupervisorEvents } from './lifecycle.js';

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

/** A CPU sample older than this is replaced when `ps` asks. */
const MIN_SAMPLE_AGE_MS = 200;

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

export class Supervisor extends EventEmitter<SupervisorEvents> {
  readonly #services = new Map<string, SupervisedService>();
  readonly #limiter: ConcurrencyLimiter;
  readonly #lifecycle: Lifecycle;
  readonly #options: SupervisorOptions;
  #closed = false;

  constructor(options: SupervisorOptions) {
    super();
    this.#options = options;
    this.#limiter = new ConcurrencyLimiter(options.maxConcurrent);
    this.#lifecycle = new Lifecycle({
      manager: options.manager,
      table: options.table,
      limiter: this.#limiter,
      store: options.store,
      sampleIntervalMs: options.sampleIntervalMs ?? 1000,
      warn: options.warn,
      events: this,
      lookup: (name) => this.#services.get(name),
      services: () => this.#services.values(),
      closed: () => this.#closed,
    });
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
    return logPathOf(this.#get(name).definition, this.#options.logDir);
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
        existing.redefine(definition);
      }
      if (wanted !== undefined) existing.wanted = wanted;
      this.#lifecycle.persist(existing);
      return;
    }
    const service = new SupervisedService(definition, this.#options);
    if (wanted !== undefined) service.wanted = wanted;
    if (outcome) {
      service.state = outcome.state;
      service.reason = outcome.reason;
      service.restarts = outcome.restarts;
      service.lastExit = outcome.lastExit;
    }
    this.#services.set(definition.name, service);
    this.#lifecycle.persist(service);
    this.emit('state', definition.name, service.state);
  }

  /** A dependency cycle would leave every service in it queued forever: refused when defined. */
  #checkNoCycle(definition: ServiceConfig): void {
    const dependsOn: DependsOn = (name) => (name === definition.name ? definition.dependsOn : this.#services.get(name)?.definition.dependsOn);
    const cycle = findCycle([definition.name], dependsOn);
    if (cycle) {
      throw new TendError('SPEC_OPTION_INVALID', { field: `${definition.name}.dependsOn`, expected: `no dependency cycle (found ${describeCycle(cycle)})`, value: definition.dependsOn });
    }
  }

  #dependsOn: DependsOn = (name) => this.#services.get(name)?.definition.dependsOn;

  // -------------------------------------------------------------------------
  // Commands

  /**
   * Starts a defined service (and the services it depends on that are not
   * running). Resolves once it runs and, if it has a readiness check, is
   * ready; rejects when it cannot start or get ready.
   */
  async start(name: string, options: StartOptions = {}): Promise<StartReport> {
    const service = this.#get(name);
    // A run of it already waits (another client's start): this start keeps it too, so that one client leaving withdraws nothing the other still wants.
    service.launching?.keepFor(options.signal, options.onQueued);
    this.#startDependencies(service, options);
    const ticket = service.work.ticket();
    return service.work.exclusive(async () => {
      this.#lifecycle.checkStillWanted(service, ticket);
      this.#checkClientStayed(service, options);
      if (service.handle || service.work.backingOff) {
        service.wanted = true;
        this.#lifecycle.persist(service);
        return { service: this.#info(service, Date.now()), already_running: true, freed: [] };
      }
      return this.#startNow(service, options);
    });
  }

  /** A start that waited for the service's lock while its client went away starts nothing. */
  #checkClientStayed(service: SupervisedService, options: StartOptions): void {
    if (options.signal?.aborted) throw new TendError('SERVICE_START_FAILED', { name: service.name, reason: WITHDRAWN_REASON });
  }

  /**
   * Dependencies that are not running are started too; a port of theirs is
   * freed only by their own start. They are kept by this start's client as
   * well: withdrawn with it when nobody else asked for them.
   */
  #startDependencies(service: SupervisedService, options: StartOptions): void {
    for (const name of dependencyClosure(service.name, this.#dependsOn)) {
      const dependency = this.#services.get(name);
      if (!dependency || dependency === service) continue;
      if (!dependency.wanted) void this.start(dependency.name, { queue: options.queue, signal: options.signal }).catch(() => undefined);
      else dependency.launching?.keepFor(options.signal);
    }
  }

  async #startNow(service: SupervisedService, options: StartOptions): Promise<StartReport> {
    service.wanted = true;
    service.tracker.reset();
    service.restarts = 0;
    this.#lifecycle.persist(service);
    const freed = await this.#lifecycle.launch(service, options);
    return { service: this.#info(service, Date.now()), already_running: false, freed };
  }

  /** Stops services (their whole trees); they stay defined, as stopped. Services that others depend on are stopped last. */
  async stop(names: readonly string[], options: { timeoutMs?: number | undefined; forget?: boolean } = {}): Promise<ServiceInfo[]> {
    const services = names.map((n) => this.#get(n));
    // Interrupt a start that waits (queue, dependencies, readiness) now, not after it took the lock for the whole wait.
    for (const service of services) this.#lifecycle.interrupt(service);
    for (const wave of this.#stopWaves(services)) {
      await Promise.all(wave.map((s) => s.work.exclusive(() => this.#lifecycle.stop(s, options.timeoutMs, options.forget !== false))));
    }
    const now = Date.now();
    return services.map((s) => this.#info(s, now));
  }

  #stopWaves(services: readonly SupervisedService[]): SupervisedService[][] {
    const waves = stopWaves(
      services.map((s) => s.name),
      this.#dependsOn,
    );
    return waves.map((wave) => wave.map((name) => this.#get(name)));
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
    this.#lifecycle.interrupt(service);
    this.#startDependencies(service, options);
    const ticket = service.work.ticket();
    // One body for stop and start: a stop that comes meanwhile waits for both, then wins.
    return service.work.exclusive(async () => {
      this.#lifecycle.checkStillWanted(service, ticket);
      this.#checkClientStayed(service, options);
      await this.#lifecycle.stop(service, options.timeoutMs, false);
      return this.#startNow(service, options);
    });
  }

  /** Stops the service and forgets its definition (its log files stay). */
  async delete(name: string, options: { timeoutMs?: number | undefined } = {}): Promise<ServiceInfo> {
    const service = this.#get(name);
    this.#lifecycle.interrupt(service);
    return service.work.exclusive(async () => {
      await this.#lifecycle.stop(service, options.timeoutMs, true);
      const info = this.#info(service, Date.now());
      this.#services.delete(name);
      this.#options.store?.remove(name);
      service.output.closeLog();
      return info;
    });
  }

  /** Everything now: queued starts are refused, every tree is killed (SIGKILL), every service marked stopped. */
  async killAll(): Promise<KillAllReport> {
    const dequeued = this.#limiter.drainQueue(new TendError('LIMIT_REACHED', { key: 'kill-all', active: 0, max: this.#limiter.max }));
    const pids = new Set<number>();
    const killed: string[] = [];
    const kill = (service: SupervisedService, handle: ProcessHandle): Promise<unknown> => {
      const members = handle.members();
      for (const pid of members) pids.add(pid);
      if (members.length > 0 && !killed.includes(service.name)) killed.push(service.name);
      return handle.stop({ signal: 'SIGKILL' });
    };
    await Promise.all([...this.#services.values()].map((service) => this.#killOne(service, kill)));
    return { killed_count: pids.size, killed_pids: [...pids].sort((a, b) => a - b), services: killed.sort(), dequeued };
  }

  async #killOne(service: SupervisedService, kill: (service: SupervisedService, handle: ProcessHandle) => Promise<unknown>): Promise<void> {
    this.#lifecycle.interrupt(service);
    service.wanted = false;
    this.#lifecycle.persist(service);
    // Now, even while a graceful stop holds the service's lock: SIGKILL escalates it.
    if (service.handle) void kill(service, service.handle).catch(() => undefined);
    await service.work.exclusive(async () => {
      const live = service.live;
      const handle = live?.handle;
      if (live && handle) {
        this.#lifecycle.setState(service, 'stopping', 'kill-all');
        await kill(service, handle);
        this.#lifecycle.onExit(service, live, await handle.wait());
        this.#lifecycle.setState(service, 'stopped', 'kill-all');
      } else if (service.state === 'queued' || service.state === 'starting' || service.state === 'backoff') {
        this.#lifecycle.setState(service, 'stopped', 'kill-all');
      }
    });
  }

  /** Starts every service that should be running (the daemon, after a restart), each after its dependencies. */
  restoreWanted(): string[] {
    const wanted = [...this.#services.values()].filter((s) => s.wanted);
    // All queued first: a dependency restored later must not look ended (its stored outcome) to a dependent restored sooner.
    for (const service of wanted) this.#lifecycle.setState(service, 'queued', null);
    for (const service of wanted) {
      this.#lifecycle.queueRelaunch(service, service.work.ticket(), (error) => {
        this.#options.warn?.(`could not restore service ${service.name}: ${(error as Error).message}`);
      });
    }
    return wanted.map((s) => s.name);
  }

  /** Stops everything. With `forget: false` (a daemon shutting down by signal) the services stay wanted, for the next daemon. */
  async close(options: { forget: boolean; timeoutMs?: number | undefined }): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#lifecycle.close();
    this.#limiter.drainQueue(new TendError('MANAGER_CLOSED'));
    await this.stop(this.names(), { timeoutMs: options.timeoutMs, forget: options.forget });
    for (const service of this.#services.values()) service.output.closeLog();
  }

  // -------------------------------------------------------------------------

  #get(name: string): SupervisedService {
    const service = this.#services.get(name);
    if (!service) {
      const known = this.names();
      throw new TendError('SERVICE_UNKNOWN', { name, known: known.length > 0 ? known.join(', ') : undefined, suggestion: closest(name, known) });
    }
    return service;
  }

  #info(service: SupervisedService, now: number): ServiceInfo {
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
      started_at: handle ? handle.startedAt.toISOString() : null,
      uptime_ms: handle ? now - handle.startedAt.getTime() : null,
      restarts: service.restarts,
      cpu_percent: cpuPercent,
      memory_bytes: memoryBytes,
      ports: definition.ports,
      ready: definition.ready ? service.ready === true : null,
      unresponsive: service.unresponsive,
      reason: service.reason,
      wanted: service.wanted,
      last_exit: service.lastExit,
      command: definition.command,
      args: definition.args,
      cwd: definition.cwd,
      log: logPathOf(definition, this.#options.logDir) ?? null,
      restart: definition.restart,
      exempt_from_limit: definition.exemptFromLimit,
      handle: handle?.id ?? null,
      strategy: handle?.strategy ?? null,
    };
  }
}
