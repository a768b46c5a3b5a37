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
import { realpathSync } from 'node:fs';
import { TendError } from '../core/errors.js';
import { tryInstanceLock } from '../platform/instance-lock.js';
import { systemProcessTable } from '../platform/proc-table.js';
import { writeFileAtomicSync } from '../registry/atomic-file.js';
import { selfIdentity } from '../registry/manager-file.js';
import { ensureStateDir } from '../registry/state-dir.js';
import { protocolHandlersOf } from './dispatch.js';
import { daemonHandlers } from './handlers.js';
import { openSupervisor } from './open-supervisor.js';
import { daemonPaths, EXIT_ALREADY_RUNNING, type DaemonInfo } from './paths.js';
import { serveProtocol } from './protocol-server.js';

/** The longest Unix socket path Linux accepts (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;

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
  const opened = await openSupervisor({ persist: paths, warn: (m) => say(`warning: ${m}`), note: say });
  const { manager, supervisor } = opened;
  supervisor.on('state', (name, state) => say(`${name}: ${state}`));

  const startedAt = new Date();
  // Named before the socket answers, so that the first `ping` already says what this daemon starts again.
  const restored = supervisor.names().filter((name) => supervisor.info(name).wanted);
  let stopping: Promise<void> | undefined;
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));

  const handlers = daemonHandlers({
    supervisor,
    paths,
    describe: () => ({
      pid: process.pid,
      version: options.version,
      state_dir: stateDir,
      socket: paths.socket,
      started_at: startedAt.toISOString(),
      uptime_ms: Date.now() - startedAt.getTime(),
      services: supervisor.names().length,
      rss_bytes: process.memoryUsage.rss(),
      reaper_pid: manager.reaperPid ?? null,
      restored,
    }),
    // As after a crash or a reboot, what ran runs again when a daemon next starts (`tend stop` first to prevent that).
    shutdown: () => void shutdown(false, 'requested'),
  });
  const server = await serveProtocol(paths.socket, protocolHandlersOf(handlers));
  const info: DaemonInfo = { ...selfIdentity(systemProcessTable()), startedAt: startedAt.toISOString(), socket: paths.socket, version: options.version };
  writeFileAtomicSync(paths.info, `${JSON.stringify(info)}\n`);
  say(`daemon ${process.pid} serving ${paths.socket} (${supervisor.names().length} service(s) defined)`);
  const restoring = supervisor.restoreWanted();
  if (restoring.length > 0) say(`starting again what was running: ${restoring.join(', ')}`);

  const shutdown = (forget: boolean, why: string): Promise<void> =>
    (stopping ??= (async () => {
      say(`shutting down (${why})`);
      await server.close();
      await opened.close({ forget });
      await lock.release();
      say('stopped');
      resolveExit(0);
    })());
  const onSignal = (signal: NodeJS.Signals): void => void shutdown(false, signal);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, onSignal);
  return exited;
}
