/**
 * What each of the daemon's methods does, on the daemon's Supervisor. The
 * params arrive checked against the method table.
 */
import { TendError, isTendError } from '../core/errors.js';
import { writeFileAtomicSync } from '../registry/atomic-file.js';
import type { ServiceConfig } from '../service/definition.js';
import type { ServiceInfo } from '../supervisor/service-info.js';
import type { StartOptions, Supervisor } from '../supervisor/supervisor.js';
import type { MethodHandlers } from './dispatch.js';
import type { DaemonDescription, StartProgress } from './methods.js';
import type { DaemonPaths } from './paths.js';

export interface HandlerHost {
  readonly supervisor: Supervisor;
  readonly paths: DaemonPaths;
  describe(): DaemonDescription;
  /** Stops the services and the daemon, after the answer is sent. */
  shutdown(): void;
}

/**
 * A start on behalf of a client: withdrawn when the client goes away while it
 * still waits (the queue, dependencies), and telling the client its place in
 * the queue as progress.
 */
function startOptions(
  params: { queue?: boolean | undefined; freePort?: boolean | undefined; force?: boolean | undefined },
  name: string,
  context: { readonly signal: AbortSignal; readonly progress: (value: StartProgress) => void },
): StartOptions {
  return {
    queue: params.queue !== false,
    freePort: params.freePort === true,
    force: params.force === true,
    signal: context.signal,
    onQueued: (place) => context.progress({ service: name, state: 'queued', ...place }),
  };
}

export function daemonHandlers(host: HandlerHost): MethodHandlers {
  const { supervisor, paths } = host;
  return {
    ping: () => Promise.resolve(host.describe()),
    ps: () => Promise.resolve({ services: supervisor.list(), limit: supervisor.limitStatus() }),
    info: (params) => Promise.resolve(supervisor.info(params.name)),
    define: async (params, context) => {
      const definition = params.definition;
      const isNew = !supervisor.has(definition.name);
      supervisor.define(definition);
      if (params.start === false) return { service: supervisor.info(definition.name), already_running: false, freed: [] };
      try {
        return await supervisor.start(definition.name, startOptions(params, definition.name, context));
      } catch (error) {
        // A new service whose spec is invalid (no such command, missing cwd) is not kept: nothing of it was started.
        if (isNew && isTendError(error) && error.isUsageError) await supervisor.delete(definition.name);
        throw error;
      }
    },
    start: (params, context) => supervisor.start(params.name, startOptions(params, params.name, context)),
    stop: async (params) => {
      const names = params.all === true ? supervisor.names() : (params.names ?? []);
      for (const name of names) supervisor.info(name); // SERVICE_UNKNOWN before anything is stopped
      return { services: await supervisor.stop(names, { timeoutMs: params.timeoutMs }) };
    },
    restart: (params, context) => supervisor.restart(params.name, { ...startOptions(params, params.name, context), timeoutMs: params.timeoutMs }),
    delete: (params) => supervisor.delete(params.name, { timeoutMs: params.timeoutMs }),
    up: async (params, context) => {
      const definitions = params.definitions;
      for (const definition of definitions) supervisor.define(definition);
      const results = await Promise.allSettled(definitions.map((d) => supervisor.start(d.name, startOptions(params, d.name, context))));
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
      setImmediate(() => host.shutdown());
      const wanted = supervisor.list().filter((s) => s.wanted).map((s) => s.name);
      return Promise.resolve({ pid: process.pid, stopping: count, stop_budget_ms: supervisor.stopBudgetMs(), wanted });
    },
  };

}
