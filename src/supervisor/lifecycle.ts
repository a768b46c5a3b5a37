/**
 * One service's state machine: a run goes queued (dependencies, ports, the
 * limiter's queue) → starting (spawned, readiness pending) → running, and
 * its tree's exit leads to backoff (and a new run), exited or failed. A stop
 * interrupts the current run first, so that work still in flight for it sees
 * it is stale (run.ts) and undoes itself instead of acting on the next one.
 */
import type { EventEmitter } from 'node:events';
import { TendError, isTendError } from '../core/errors.js';
import type { FinalStatus, ProcessSpec } from '../core/types.js';
import type { ProcessHandle } from '../manager/process-handle.js';
import type { ProcessManager } from '../manager/process-manager.js';
import type { ProcessTable } from '../platform/proc-table.js';
import type { ServiceConfig } from '../service/definition.js';
import { waitForDependencies } from './dependencies.js';
import { HealthWatch } from './health.js';
import type { ConcurrencyLimiter, QueuePlace } from './limiter.js';
import { clearPorts, foreignListener, type PortOptions } from './ports.js';
import { waitUntilReady } from './readiness.js';
import { Run, WITHDRAWN_REASON } from './run.js';
import type { FreedPort, ServiceState } from './service-info.js';
import type { ServiceStore, StoredOutcome } from './service-store.js';
import type { SupervisedService } from './supervised-service.js';

export interface StartOptions extends PortOptions {
  /** Wait for a slot under the limit (default), or refuse with LIMIT_REACHED. */
  readonly queue?: boolean | undefined;
  /**
   * The requesting client's: when it aborts (the client went away) before the
   * tree is spawned, and no other start still wants the run, the start is
   * withdrawn. None: the start is kept whatever happens.
   */
  readonly signal?: AbortSignal | undefined;
  /** Told when the start waits in the limiter's queue, and when its place there changes. */
  readonly onQueued?: ((place: QueuePlace) => void) | undefined;
}

export interface SupervisorEvents {
  /** A service changed state. */
  state: [name: string, state: ServiceState];
}

export interface LifecycleContext {
  readonly manager: ProcessManager;
  readonly table: ProcessTable;
  readonly limiter: ConcurrencyLimiter;
  readonly store: ServiceStore | undefined;
  readonly sampleIntervalMs: number;
  readonly warn: ((message: string) => void) | undefined;
  /** Where state changes are announced (the supervisor). */
  readonly events: EventEmitter<SupervisorEvents>;
  readonly lookup: (name: string) => SupervisedService | undefined;
  readonly services: () => Iterable<SupervisedService>;
  readonly closed: () => boolean;
}

export function exitReason(status: FinalStatus): string {
  if (status.state === 'exited') return `exit code ${status.exitCode}`;
  if (status.state === 'terminated') return `killed by ${status.signal}`;
  return status.error.message;
}

/** Why the listener on `port` is not the tree's; undefined when it is. */
function listenerOwner(service: { readonly handle: ProcessHandle | undefined }, port: number, answered: boolean, table: ProcessTable): string | undefined {
  return foreignListener(port, service.handle?.members() ?? [], table, answered);
}

export class Lifecycle {
  readonly #context: LifecycleContext;
  readonly #health: HealthWatch;

  constructor(context: LifecycleContext) {
    this.#context = context;
    this.#health = new HealthWatch({
      sampleIntervalMs: context.sampleIntervalMs,
      onUnresponsive: (service, reason) => this.#markUnresponsive(service as SupervisedService, reason),
      onResponsive: (service) => this.#markResponsive(service as SupervisedService),
      listenerOwner: (service, port, answered) => listenerOwner(service, port, answered, context.table),
    });
  }

  close(): void {
    this.#health.close();
  }

  /** Starts a new run of the service and resolves once it runs (and is ready); the freed ports are returned. */
  async launch(service: SupervisedService, options: StartOptions): Promise<FreedPort[]> {
    if (this.#context.closed()) throw new TendError('MANAGER_CLOSED');
    const run = new Run();
    service.run = run;
    service.launching = run;
    run.keepFor(options.signal, options.onQueued);
    try {
      return await this.#startRun(service, run, options);
    } finally {
      if (service.launching === run) service.launching = undefined;
    }
  }

  async #startRun(service: SupervisedService, run: Run, options: StartOptions): Promise<FreedPort[]> {
    const definition = service.definition;
    if (service.handle) throw new TendError('SERVICE_START_FAILED', { name: definition.name, reason: `it still runs as pid ${service.handle.pid ?? '?'}` });
    try {
      service.ready = null;
      service.unresponsive = false;
      this.setState(service, 'queued', null);
      await waitForDependencies(service, this.#context.lookup, this.#context.events, run.signal);
      // Ports first: freeing one may stop a service of ours, which frees a slot under the limit.
      const freed = await clearPorts(definition, options, { table: this.#context.table, stopService: (id) => this.#stopOwnerOf(id) });
      await run.acquireSlot(this.#context.limiter, { key: definition.name, exempt: definition.exemptFromLimit, queue: options.queue ?? true });
      if (service.run !== run) throw new TendError('SERVICE_START_FAILED', { name: definition.name, reason: 'it was stopped while starting' });
      // The last client may have left between the slot's grant and here: checked, then withdrawal ends for this run.
      run.commitToSpawn();
      this.setState(service, 'starting', null);
      const handle = await this.#spawn(service, run);
      if (definition.ready) await this.#awaitReady(service, run, handle);
      // It exited (or was stopped) while getting ready: onExit has decided what follows.
      if (service.run !== run || service.handle !== handle) throw this.#endedWhileStarting(service);
      this.setState(service, 'running', null);
      this.#health.watch(service, () => service.run === run);
      return freed;
    } catch (error) {
      if (!run.handle) {
        run.releaseSlot();
        if (service.run === run) {
          service.run = undefined;
          service.wanted = false;
          this.persist(service);
          if (run.withdrawn) {
            this.setState(service, 'stopped', WITHDRAWN_REASON);
            throw new TendError('SERVICE_START_FAILED', { name: definition.name, reason: WITHDRAWN_REASON });
          }
          const refused = isTendError(error, 'LIMIT_REACHED');
          this.setState(service, refused ? 'stopped' : 'failed', error instanceof Error ? error.message : String(error));
        }
      }
      throw error;
    }
  }

  /** Spawns the run's tree and makes it the service's; throws (the tree stays, for the stop) if the run went stale meanwhile. */
  async #spawn(service: SupervisedService, run: Run): Promise<ProcessHandle> {
    const definition = service.definition;
    const log = service.output.openLog(definition);
    const handle = await this.#context.manager.start(specOf(definition, service.output.wantsPipe(definition)));
    // The tree is the service's from here on: a stop that came meanwhile finds it in service.handle.
    run.handle = handle;
    service.live = run;
    // Its slot shows the pid from the moment the tree exists, stale run or not: a
    // slot without a pid is one whose start has not spawned yet (`starting`).
    const pid = commandPid(handle);
    if (pid !== undefined) run.attachPid(pid);
    if (service.run !== run) throw new TendError('SERVICE_START_FAILED', { name: definition.name, reason: 'it was stopped while starting' });
    service.lookSample = undefined;
    service.lastPercent = null;
    service.output.attach(handle, log);
    if (pid !== undefined) service.output.writePidFile(pid);
    void handle.wait().then((status) => this.onExit(service, run, status));
    return handle;
  }

  /** Waits for the readiness check; a check that does not pass ends the run and stops its tree. */
  async #awaitReady(service: SupervisedService, run: Run, handle: ProcessHandle): Promise<void> {
    const check = service.definition.ready;
    if (!check) return;
    try {
      const table = this.#context.table;
      await waitUntilReady(check, { signal: run.signal, logLines: service.output.lineSource(), listenerOwner: (port, answered) => foreignListener(port, handle.members(), table, answered) });
    } catch (error) {
      if (service.run !== run || service.handle !== handle) throw this.#endedWhileStarting(service);
      // Not ready in time: the run is over. No restart: the configuration, not a crash, is the likely cause.
      const reason = error instanceof Error ? error.message : String(error);
      service.run = undefined;
      service.wanted = false;
      this.persist(service);
      this.setState(service, 'stopping', null);
      await handle.stop();
      this.onExit(service, run, await handle.wait());
      this.setState(service, 'failed', `not ready: ${reason}`);
      throw new TendError('SERVICE_NOT_READY', { name: service.name, reason });
    }
    service.ready = true;
  }

  /** The run's tree ended: frees what it held and decides what follows (restart after a backoff, exited, failed). */
  onExit(service: SupervisedService, run: Run, status: FinalStatus): void {
    if (service.live !== run) return;
    service.live = undefined;
    run.releaseSlot();
    this.#health.unwatch(service);
    service.output.removePidFile();
    const exitedAt = Date.now();
    const code = status.state === 'exited' ? status.exitCode : null;
    const signal = status.state === 'terminated' ? status.signal : null;
    service.lastExit = { code, signal, at: new Date(exitedAt).toISOString() };
    // A stop in progress decides the state itself.
    if (service.state === 'stopping') return;
    // The exit ends any wait of this run (readiness): its launch unwinds as stale.
    if (service.run === run) service.run = undefined;
    run.end(new Error(`it exited (${exitReason(status)})`));
    const startedAt = (run.handle as ProcessHandle).startedAt.getTime();
    const decision = service.tracker.decideAfterExit({ startedAt, exitedAt, code, signal, requestedByUser: false });
    if (decision.kind === 'restart') {
      service.restarts++;
      this.setState(service, 'backoff', `${exitReason(status)}; restart ${decision.attempt} in ${decision.delayMs} ms`);
      service.work.scheduleRestart(decision.delayMs, (ticket) => this.queueRelaunch(service, ticket, () => undefined));
      return;
    }
    service.wanted = false;
    this.persist(service);
    if (decision.kind === 'failed') this.setState(service, 'failed', decision.reason);
    else this.setState(service, 'exited', `${exitReason(status)} (${decision.reason})`);
  }

  /** A launch queued behind the service's lock (backoff, restore), dropped if an interrupt comes first. */
  queueRelaunch(service: SupervisedService, ticket: AbortSignal, onError: (error: unknown) => void): void {
    void service.work
      .exclusive(() => {
        this.checkStillWanted(service, ticket);
        return this.launch(service, {});
      })
      .catch(onError);
  }

  /**
   * Work waits for the service's lock; a stop, delete or kill-all that came
   * after it was queued wins, and a deleted service starts nothing.
   */
  checkStillWanted(service: SupervisedService, ticket: AbortSignal): void {
    if (this.#context.lookup(service.name) !== service) {
      const known = [...this.#context.services()].map((s) => s.name);
      throw new TendError('SERVICE_UNKNOWN', { name: service.name, known: known.join(', ') || undefined });
    }
    if (ticket.aborted) throw new TendError('SERVICE_START_FAILED', { name: service.name, reason: 'it was stopped before it started' });
  }

  /** Why a start did not complete, once its run went stale: stopped, or exited (and maybe restarting). */
  #endedWhileStarting(service: SupervisedService): TendError {
    const stopped = service.state === 'stopping' || service.state === 'stopped';
    const reason = stopped ? 'it was stopped while starting' : `it ended before it was ready (${service.reason ?? service.state}); see \`tend logs ${service.name}\``;
    return new TendError('SERVICE_START_FAILED', { name: service.name, reason });
  }

  /** Ends the current run (its waits end) and drops queued work (a backoff restart among it). */
  interrupt(service: SupervisedService): void {
    service.work.interrupt();
    service.run?.end(new Error('stopped'));
    service.run = undefined;
  }

  /** Runs under the service's lock, so no launch of it is in flight. */
  async stop(service: SupervisedService, timeoutMs: number | undefined, forget: boolean): Promise<void> {
    this.interrupt(service);
    if (forget) {
      service.wanted = false;
      this.persist(service);
    }
    const live = service.live;
    const handle = live?.handle;
    if (live && handle) {
      this.setState(service, 'stopping', null);
      await handle.stop(timeoutMs === undefined ? {} : { timeoutMs });
      this.onExit(service, live, await handle.wait());
    }
    if (handle || service.state === 'backoff' || service.state === 'queued') this.setState(service, 'stopped', 'stopped by user');
  }

  /** A service of ours holds a port another one needs: stopped whole, under its lock. */
  async #stopOwnerOf(tendHandle: string): Promise<boolean> {
    const owner = [...this.#context.services()].find((s) => s.handle !== undefined && s.handle.id === tendHandle);
    if (!owner) return false;
    this.interrupt(owner);
    await owner.work.exclusive(() => this.stop(owner, undefined, true));
    return true;
  }

  setState(service: SupervisedService, state: ServiceState, reason: string | null): void {
    service.state = state;
    service.reason = reason;
    // How it ended is kept with the definition, so that a new daemon can still say why.
    if (state === 'stopped' || state === 'exited' || state === 'failed') this.persist(service);
    this.#context.events.emit('state', service.name, state);
  }

  persist(service: SupervisedService): void {
    try {
      const ended = service.state === 'stopped' || service.state === 'exited' || service.state === 'failed';
      const outcome = ended ? { state: service.state as StoredOutcome['state'], reason: service.reason, restarts: service.restarts, lastExit: service.lastExit } : undefined;
      this.#context.store?.save({ definition: service.definition, wanted: service.wanted, outcome });
    } catch (error) {
      this.#context.warn?.(`could not save service ${service.name}: ${(error as Error).message}`);
    }
  }

  #markUnresponsive(service: SupervisedService, reason: string): void {
    if (service.unresponsive) return;
    service.unresponsive = true;
    service.reason = reason;
    this.#context.events.emit('state', service.name, service.state);
    if (!service.definition.unresponsive?.restart) return;
    this.#context.warn?.(`service ${service.name} is unresponsive (${reason}): restarting it`);
    const ticket = service.work.ticket();
    void service.work
      .exclusive(async () => {
        this.checkStillWanted(service, ticket);
        await this.stop(service, undefined, false);
        service.restarts++;
        await this.launch(service, {});
      })
      .catch(() => undefined);
  }

  #markResponsive(service: SupervisedService): void {
    if (!service.unresponsive) return;
    service.unresponsive = false;
    service.reason = null;
    this.#context.events.emit('state', service.name, service.state);
  }
}

function specOf(definition: ServiceConfig, piped: boolean): ProcessSpec {
  return {
    name: definition.name,
    command: definition.command,
    args: [...definition.args],
    cwd: definition.cwd,
    env: { ...definition.env },
    inheritEnv: Array.isArray(definition.inheritEnv) ? [...(definition.inheritEnv as string[])] : definition.inheritEnv,
    stdio: piped ? 'pipe' : 'ignore',
    stopSignal: definition.stopSignal,
    stopTimeoutMs: definition.stopTimeoutMs,
    strategy: definition.strategy,
  };
}

/** The command's own pid (for pidns, not the namespace's init). */
export function commandPid(handle: ProcessHandle): number | undefined {
  const status = handle.status();
  return status.state === 'running' ? status.pid : handle.pid;
}
