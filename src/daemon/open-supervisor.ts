/**
 * A Supervisor with its ProcessManager, wired the one way both its hosts
 * need: the daemon (definitions kept in the state directory, logs and PID
 * files there, the limit from its settings) and `tend up` in the foreground
 * (nothing kept; output shown).
 */
import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { errnoOf } from '../core/errors.js';
import { ProcessManager } from '../manager/process-manager.js';
import { systemProcessTable } from '../platform/proc-table.js';
import { ServiceStore } from '../supervisor/service-store.js';
import { Supervisor } from '../supervisor/supervisor.js';
import type { DaemonPaths } from './paths.js';

/** How many services may run at once until `tend limit N` says otherwise. */
export const DAEMON_DEFAULT_LIMIT = 16;

export interface OpenSupervisorOptions {
  /** The daemon's files: definitions persist and are loaded, logs and PID files live there. None for a foreground stack. */
  readonly persist?: DaemonPaths | undefined;
  /** Without persist: the limit (the daemon reads its own from its settings). */
  readonly maxConcurrent?: number | undefined;
  readonly onOutput?: ((service: string, line: string) => void) | undefined;
  readonly warn: (message: string) => void;
  /** Progress worth a line in the daemon's log. */
  readonly note?: ((message: string) => void) | undefined;
}

export interface OpenedSupervisor {
  readonly manager: ProcessManager;
  readonly supervisor: Supervisor;
  /** Stops every service, then the manager. `forget: false` keeps them wanted, for the next daemon. */
  close(options: { readonly forget: boolean }): Promise<void>;
}

export async function openSupervisor(options: OpenSupervisorOptions): Promise<OpenedSupervisor> {
  const paths = options.persist;
  const manager = await ProcessManager.create({ handleSignals: false, ...(paths ? { stateDir: paths.stateDir } : {}) });
  manager.on('warning', (w) => options.warn(w.message));
  const recovered = manager.recovery;
  if (recovered && recovered.trees.length > 0) options.note?.(`recovered ${recovered.trees.length} tree(s) left by a previous manager`);

  // PID files of the previous daemon's services name processes that are gone (their pids may be reused).
  if (paths) removePidFiles(paths.run);
  const store = paths ? new ServiceStore(paths.services, options.warn) : undefined;
  const supervisor = new Supervisor({
    manager,
    table: systemProcessTable(),
    store,
    logDir: paths?.logs,
    runDir: paths?.run,
    maxConcurrent: paths ? readLimit(paths.settings, options.warn) : options.maxConcurrent,
    onOutput: options.onOutput,
    warn: options.warn,
  });
  for (const stored of store?.load() ?? []) supervisor.define(stored.definition, stored.wanted, stored.outcome);
  return {
    manager,
    supervisor,
    async close({ forget }) {
      await supervisor.close({ forget });
      await manager.shutdown();
    },
  };
}

function readLimit(path: string, warn: (message: string) => void): number {
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as { maxConcurrent?: unknown };
    if (typeof value.maxConcurrent === 'number' && Number.isSafeInteger(value.maxConcurrent) && value.maxConcurrent > 0) return value.maxConcurrent;
    warn(`ignoring settings ${path}: no valid maxConcurrent`);
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT') warn(`ignoring unreadable settings ${path}: ${(error as Error).message}`);
  }
  return DAEMON_DEFAULT_LIMIT;
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
