/**
 * Reaching the daemon: connect to its socket, starting it first when asked
 * and none runs. Several clients may race to start it; the kernel-held lock
 * lets one daemon win and the rest exit, and every client then connects to
 * the winner.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { TendError, errnoOf, isTendError } from '../core/errors.js';
import { matchesIdentity } from '../platform/identity.js';
import { packageRoot } from '../platform/package-root.js';
import type { ProcessTable } from '../platform/proc-table.js';
import { ensureStateDir } from '../registry/state-dir.js';
import { daemonPaths, EXIT_ALREADY_RUNNING, type DaemonInfo } from './paths.js';
import { daemonClientOf, type DaemonClient } from './dispatch.js';
import { connectProtocol, type ProtocolClient } from './protocol-client.js';

const CONNECT_TIMEOUT_MS = 5_000;
const DAEMON_START_TIMEOUT_MS = 15_000;

export interface ConnectDaemonOptions {
  readonly stateDir: string;
  /** Start the daemon when none runs (default false: DAEMON_NOT_RUNNING). */
  readonly start?: boolean;
  /** The environment the daemon is started with. */
  readonly env?: NodeJS.ProcessEnv;
}

export interface DaemonConnection {
  readonly client: DaemonClient;
  /** The pid of the daemon this call spawned, if it had to (a racing client's daemon may be the one that won). */
  readonly spawnedPid: number | undefined;
}

async function tryConnect(socket: string): Promise<ProtocolClient | undefined> {
  try {
    return await connectProtocol(socket, { timeoutMs: CONNECT_TIMEOUT_MS });
  } catch (error) {
    if (isTendError(error, 'DAEMON_NOT_RUNNING')) return undefined;
    throw error;
  }
}

export async function connectDaemon(options: ConnectDaemonOptions): Promise<DaemonConnection> {
  const paths = daemonPaths(options.stateDir);
  const existing = await tryConnect(paths.socket);
  if (existing) return { client: daemonClientOf(existing), spawnedPid: undefined };
  if (!options.start) throw new TendError('DAEMON_NOT_RUNNING', { stateDir: options.stateDir });
  ensureStateDir(options.stateDir);

  let exit: { code: number | null; signal: string | null } | undefined;
  const spawnDaemon = async (): Promise<number | undefined> => {
    exit = undefined;
    const out = openSync(paths.log, 'a', 0o600);
    try {
      // Loaded only when a daemon must be started: the queries do not pay for child_process.
      const { spawn } = await import('node:child_process');
      // A small young generation: answering ps for many services makes short-lived garbage, and
      // the default semi-spaces keep ~10 MiB more resident afterwards (measured with 100 services).
      const child = spawn(process.execPath, ['--max-semi-space-size=1', join(packageRoot(), 'dist', 'src', 'bin', 'tend.js'), 'daemon', 'run'], {
        detached: true,
        stdio: ['ignore', out, out],
        env: { ...(options.env ?? process.env), TEND_HOME: options.stateDir },
        cwd: '/',
      });
      child.on('exit', (code, signal) => (exit = { code, signal }));
      child.on('error', (error) => (exit = { code: null, signal: error.message }));
      child.unref();
      return child.pid;
    } finally {
      closeSync(out);
    }
  };
  let spawnedPid = await spawnDaemon();
  let lostRaces = 0;

  const deadline = Date.now() + DAEMON_START_TIMEOUT_MS;
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    const client = await tryConnect(paths.socket);
    if (client) return { client: daemonClientOf(client), spawnedPid };
    if (exit !== undefined && exit.code !== EXIT_ALREADY_RUNNING) {
      throw new TendError('DAEMON_START_FAILED', { stateDir: options.stateDir, reason: `it exited (${exit.code === null ? exit.signal : `code ${exit.code}`}) before it listened`, log: paths.log });
    }
    if (Date.now() > deadline) {
      const reason =
        lostRaces > 0
          ? `another process holds the daemon lock for this state directory but nothing answers on ${paths.socket} (a daemon still shutting down, or a process squatting on the lock)`
          : `it did not listen on ${paths.socket} within ${DAEMON_START_TIMEOUT_MS / 1000} s`;
      throw new TendError('DAEMON_START_FAILED', { stateDir: options.stateDir, reason, log: paths.log });
    }
    await delay(wait);
    // Ours lost the lock to another daemon. The winner listens soon, unless it is
    // one shutting down: then nobody would start the next, so try again.
    if (exit !== undefined && exit.code === EXIT_ALREADY_RUNNING) {
      lostRaces++;
      await delay(50);
      spawnedPid = await spawnDaemon();
    }
  }
}

/** The daemon's recorded identity, if the process it names is alive and is that daemon. */
export function runningDaemon(stateDir: string, table: ProcessTable): DaemonInfo | undefined {
  let info: DaemonInfo;
  try {
    info = JSON.parse(readFileSync(daemonPaths(stateDir).info, 'utf8')) as DaemonInfo;
  } catch (error) {
    if (errnoOf(error) === 'ENOENT' || error instanceof SyntaxError) return undefined;
    throw error;
  }
  return matchesIdentity(table, info, table.read(info.pid)) ? info : undefined;
}
