/**
 * The state directory while no daemon runs: which services are defined, how
 * each ended, and which the next daemon will start again. Reading it starts
 * no daemon; changing it (stop, delete) is done under the daemon's own lock,
 * so that no daemon starts and loads the definitions halfway through.
 */
import { existsSync, realpathSync } from 'node:fs';
import { TendError } from '../core/errors.js';
import { tryInstanceLock } from '../platform/instance-lock.js';
import { closest } from '../spawn/normalize-spec.js';
import { logPathOf } from '../supervisor/output.js';
import type { ServiceInfo } from '../supervisor/service-info.js';
import { ServiceStore, type StoredService } from '../supervisor/service-store.js';
import { daemonPaths } from './paths.js';

/** The stored services, in name order; a damaged file is skipped (and reported), never moved: that is the daemon's to do. */
export function readStoredServices(stateDir: string, warn: (message: string) => void): StoredService[] {
  const paths = daemonPaths(stateDir);
  if (!existsSync(paths.services)) return [];
  return new ServiceStore(paths.services, warn).load({ moveDamaged: false });
}

/** What `ps` and `status` say of a stored service: no process, the state it ended in. */
export function storedServiceInfo(stored: StoredService, stateDir: string): ServiceInfo {
  const definition = stored.definition;
  const outcome = stored.outcome;
  return {
    name: definition.name,
    state: outcome?.state ?? 'stopped',
    pid: null,
    pids: [],
    started_at: null,
    uptime_ms: null,
    restarts: outcome?.restarts ?? 0,
    cpu_percent: null,
    memory_bytes: null,
    ports: definition.ports,
    ready: definition.ready ? false : null,
    unresponsive: false,
    reason: stored.wanted ? 'the daemon is not running; it starts this service again when it starts' : (outcome?.reason ?? null),
    wanted: stored.wanted,
    last_exit: outcome?.lastExit ?? null,
    command: definition.command,
    args: definition.args,
    cwd: definition.cwd,
    log: logPathOf(definition, daemonPaths(stateDir).logs) ?? null,
    restart: definition.restart,
    exempt_from_limit: definition.exemptFromLimit,
    handle: null,
    strategy: null,
  };
}

/** The stored service named `name`, or SERVICE_UNKNOWN naming the known ones. */
export function findStored(services: readonly StoredService[], name: string): StoredService {
  const found = services.find((s) => s.definition.name === name);
  if (found) return found;
  const known = services.map((s) => s.definition.name);
  throw new TendError('SERVICE_UNKNOWN', { name, known: known.length > 0 ? known.join(', ') : undefined, suggestion: closest(name, known) });
}

/**
 * Runs `change` on the stored services with no daemon running, holding the
 * daemon's lock so none starts meanwhile. Resolves undefined when a daemon
 * holds the lock: then the change is the daemon's to make.
 */
export async function changeStoredServices<T>(stateDir: string, change: (store: ServiceStore) => T): Promise<T | undefined> {
  const paths = daemonPaths(stateDir);
  if (!existsSync(paths.services)) return change(new ServiceStore(paths.services, () => undefined));
  const lock = await tryInstanceLock(realpathSync(stateDir));
  if (!lock) return undefined;
  try {
    return change(new ServiceStore(paths.services, () => undefined));
  } finally {
    await lock.release();
  }
}
