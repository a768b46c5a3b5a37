/**
 * The daemon: one per state directory, holding the Supervisor and serving it
 * on `<state>/daemon.sock` (0600). It runs with a reaper like every
 * ProcessManager, so its SIGKILL leaves nothing running; the next daemon's
 * manager recovers the records of the old trees, and the daemon starts again
 * every service that should be running.
 *
 * One per state directory is enforced by a kernel-held lock (an abstract
 * socket named after the directory), which dies with its holder.
 */
import { readdirSync, readFileSync, realpathSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { TendError, errnoOf, isTendError } from '../core/errors.js';
import { ProcessManager } from '../manager/process-manager.js';
import { tryInstanceLock } from '../platform/instance-lock.js';
import { systemProcessTable } from '../platform/proc-table.js';
import { writeFileAtomicSync } from '../registry/atomic-file.js';
import { selfIdentity } from '../registry/manager-file.js';
import { ensureStateDir } from '../registry/state-dir.js';
import { daemonPaths, EXIT_ALREADY_RUNNING, type DaemonInfo } from './paths.js';
import type { ServiceConfig } from '../service/definition.js';
import { protocolHandlersOf, type MethodHandlers } from './dispatch.js';
import type { DaemonDescription } from './methods.js';
import { serveProtocol } from './protocol.js';
import { ServiceStore } from '../supervisor/service-store.js';
import type { ServiceInfo } from '../supervisor/service-info.js';
import { Supervisor, type StartOptions } from '../supervisor/supervisor.js';

/** How many services may run at once until `tend limit N` says otherwise. */
export const DAEMON_DEFAULT_LIMIT = 16;

/** The longest Unix socket path Linux accepts (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;

interface Settings {
  readonly maxConcurrent: number;
}

function readSettings(path: string): Settings {
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as { maxConcurrent?: unknown };
    if (typeof value.maxConcurrent === 'number' && Number.isSafeInteger(value.maxConcurrent) && value.maxConcurrent > 0) return { maxConcurrent: value.maxConcurrent };
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT') process.stderr.write(`tend daemon: ignoring unreadable settings ${path}: ${(error as Error).message}\n`);
  }
  return { maxConcurrent: DAEMON_DEFAULT_LIMIT };
}

function removePidFiles(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.endsWith('.pid')) continue;
    try {
      unlinkSync(join(dir, name));
    } catch {
      // Gone already.
    }
  }
}

function startOptions(params: { queue?: boolean | undefined; freePort?: boolean | undefined; force?: boolean | undefined }): StartOptions {
  return { queue: params.queue !== false, freePort: params.freePort === true, force: params.force === true };
}

export interface DaemonOptions {
  readonly stateDir: string;
  readonly version: string;
  /** Where progress lines go (the daemon's log). */
  readonly log: (line: string) => void;
}

/** Runs the daemon until it is told to stop (request or signal); resolves with its exit code. */
export async function runDaemon(options: DaemonOptions): Promise<number> {
  const stateDir = ensureStateDir(options.stateDir);
  const paths = daemonPaths(stateDir);
  if (Buffer.byteLength(paths.socket) > MAX_SOCKET_PATH) {
    throw new TendError('DAEMON_START_FAILED', { stateDir, reason: `its socket path ${paths.socket} is longer than the ${MAX_SOCKET_PATH} bytes a Unix socket allows; point TEND_HOME at a shorter path` });
  }
  const lock = await tryInstanceLock(realpathSync(stateDir));
  if (!lock) {
    options.log(`another daemon already serves ${stateDir}`);
    return EXIT_ALREADY_RUNNING;
  }
  const say = (line: string): void => options.log(`${new Date().toISOString()} ${line}`);
  const table = systemProcessTable();
  const manager = await ProcessManager.create({ stateDir, handleSignals: false });
  manager.on('warning', (w) => say(`warning: ${w.message}`));
  const recovered = manager.recovery;
  if (recovered && recovered.trees.length > 0) say(`recovered ${recovered.trees.length} tree(s) left by a previous daemon`);

  // PID files of the previous daemon's services name processes that are gone (their pids may be reused).
  removePidFiles(paths.run);
  const settings = readSettings(paths.settings);
  const store = new ServiceStore(paths.services, (m) => say(`warning: ${m}`));
  const supervisor = new Supervisor({
    manager,
    table,
    store,
    logDir: paths.logs,
    runDir: paths.run,
    maxConcurrent: settings.maxConcurrent,
    warn: (m) => say(`warning: ${m}`),
  });
  supervisor.on('state', (name, state) => say(`${name}: ${state}`));
  for (const stored of store.load()) supervisor.define(stored.definition, stored.wanted, stored.outcome);

  const startedAt = new Date();
  let stopping: Promise<void> | undefined;
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));

  const describe = (): DaemonDescription => ({
    pid: process.pid,
    version: options.version,
    stateDir,
    socket: paths.socket,
    startedAt: startedAt.toISOString(),
    uptimeMs: Date.now() - startedAt.getTime(),
    services: supervisor.names().length,
    rssBytes: process.memoryUsage.rss(),
    reaperPid: manager.reaperPid ?? null,
  });

  const handlers: MethodHandlers = {
    ping: () => Promise.resolve(describe()),
    ps: () => Promise.resolve({ services: supervisor.list(), limit: supervisor.limitStatus() }),
    info: (params) => Promise.resolve(supervisor.info(params.name)),
    define: async (params) => {
      const definition = params.definition;
      const isNew = !supervisor.has(definition.name);
      supervisor.define(definition);
      if (params.start === false) return { service: supervisor.info(definition.name), alreadyRunning: false, freed: [] };
      try {
        return await supervisor.start(definition.name, startOptions(params));
      } catch (error) {
        // A new service whose spec is invalid (no such command, missing cwd) is not kept: nothing of it was started.
        if (isNew && isTendError(error) && error.isUsageError) await supervisor.delete(definition.name);
        throw error;
      }
    },
    start: (params) => supervisor.start(params.name, startOptions(params)),
    stop: async (params) => {
      const names = params.all === true ? supervisor.names() : (params.names ?? []);
      for (const name of names) supervisor.info(name); // SERVICE_UNKNOWN before anything is stopped
      return { services: await supervisor.stop(names, { timeoutMs: params.timeoutMs }) };
    },
    restart: (params) => supervisor.restart(params.name, { ...startOptions(params), timeoutMs: params.timeoutMs }),
    delete: (params) => supervisor.delete(params.name, { timeoutMs: params.timeoutMs }),
    up: async (params) => {
      const definitions = params.definitions;
      for (const definition of definitions) supervisor.define(definition);
      const options = startOptions(params);
      const results = await Promise.allSettled(definitions.map((d) => supervisor.start(d.name, options)));
      const errors = results.flatMap((r, i) => {
        if (r.status === 'fulfilled') return [];
        const body = isTendError(r.reason) ? r.reason.toBody() : new TendError('INTERNAL', { reason: String(r.reason) }).toBody();
        return [{ name: (definitions[i] as ServiceConfig).name, code: body.code, message: body.message }];
      });
      const services: ServiceInfo[] = definitions.map((d) => supervisor.info(d.name));
      return { services, errors };
    },
    limit: (params) => {
      if (params.max === undefined) return Promise.resolve(supervisor.limitStatus());
      const change = supervisor.setLimit(params.max);
      writeFileAtomicSync(paths.settings, `${JSON.stringify({ maxConcurrent: change.new_limit })}\n`);
      return Promise.resolve({ ...supervisor.limitStatus(), ...change });
    },
    killAll: () => supervisor.killAll(),
    shutdown: () => {
      const count = supervisor.list().filter((s) => s.pid !== null).length;
      // Answer first: the connection is closed by the shutdown.
      setImmediate(() => void shutdown(true, 'requested'));
      return Promise.resolve({ pid: process.pid, stopping: count, stopBudgetMs: supervisor.stopBudgetMs() });
    },
  };

  const server = await serveProtocol(paths.socket, protocolHandlersOf(handlers));
  const self = selfIdentity(table);
  const info: DaemonInfo = { ...self, startedAt: startedAt.toISOString(), socket: paths.socket, version: options.version };
  writeFileAtomicSync(paths.info, `${JSON.stringify(info)}\n`);
  say(`daemon ${process.pid} serving ${paths.socket} (${supervisor.names().length} service(s) defined)`);
  supervisor.restoreWanted();

  const shutdown = (forget: boolean, why: string): Promise<void> =>
    (stopping ??= (async () => {
      say(`shutting down (${why})`);
      await server.close();
      await supervisor.close({ forget });
      await manager.shutdown();
      await lock.release();
      say('stopped');
      resolveExit(0);
    })());
  const onSignal = (signal: NodeJS.Signals): void => void shutdown(false, signal);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, onSignal);
  return exited;
}
