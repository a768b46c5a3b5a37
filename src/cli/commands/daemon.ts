import { fstatSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TendError } from '../../core/errors.js';
import { packageRoot } from '../../platform/package-root.js';
import { systemProcessTable } from '../../platform/proc-table.js';
import { sendSignal } from '../../platform/signal.js';
import { waitIdentityGone } from '../../platform/identity.js';
import { connectDaemon, runningDaemon } from '../../daemon/client.js';
import type { ShutdownResult } from '../../daemon/methods.js';
import { daemonPaths } from '../../daemon/paths.js';
import { closest } from '../../spawn/normalize-spec.js';
import { usageError } from '../args.js';
import { defineCommand } from '../command-kit.js';
import { printJson, queryDaemonIfRunning, stateDir } from '../daemon-client.js';
import { formatBytes, formatDuration } from '../format.js';

export const help = `Usage: tend daemon start|stop|status|run [options]

The daemon keeps named services running. There is one per state directory
($TEND_HOME, else $XDG_STATE_HOME/tend, else ~/.local/state/tend); commands
such as \`tend start\` start it when it is not running.

  start    start the daemon in the background (nothing happens if it runs);
           it starts again the services that were running when the last
           daemon ended, and says which
  stop     stop every service, then the daemon. The services that were
           running stay wanted: the next daemon starts them again (\`tend
           stop NAME\` or \`--all\` first to prevent that). --force kills a
           daemon that does not answer (SIGKILL: its reaper kills every
           service tree)
  status   whether it runs: pid, uptime, services, memory (exit 1 if not)
  run      run the daemon in the foreground (for systemd and the like);
           SIGTERM stops the services but keeps them wanted, so the next
           daemon starts them again

If the daemon is killed, nothing it started keeps running, and the next
daemon starts again the services that were running.

Options:
      --json    print one JSON document
      --force   with stop: SIGKILL the daemon if it does not stop within 10 s
  -h, --help    show this help`;

const STOP_WAIT_MS = 10_000;
const DAEMON_LOG_MAX_BYTES = 1024 * 1024;

function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * Started in the background, the daemon's output is its log file: it is then
 * rotated (a crash-looping service writes a few lines per restart, forever).
 * In the foreground it is plain stdout, for the service manager to keep.
 */
/** Whether file descriptor `fd` is the file at `path`. */
function isOpenOn(fd: number, path: string): boolean {
  try {
    const [open, file] = [fstatSync(fd), statSync(path)];
    return open.isFile() && open.ino === file.ino && open.dev === file.dev;
  } catch {
    return false;
  }
}

async function daemonLog(path: string): Promise<(line: string) => void> {
  if (!isOpenOn(1, path)) return (line) => void process.stdout.write(`${line}\n`);
  const { RotatingLog } = await import('../../supervisor/rotating-log.js');
  const log = new RotatingLog(path, { maxBytes: DAEMON_LOG_MAX_BYTES, keep: 2, onError: () => undefined });
  return (line) => log.write(`${line}\n`);
}

const actions = ['start', 'stop', 'status', 'run'] as const;

export const { run } = defineCommand({
  name: 'daemon',
  help,
  flags: { force: { kind: 'boolean' } },
  positionals: [{ name: 'ACTION', optional: true }],
  json: true,
  run: ({ args, flags, json }) => {
    const action = args.ACTION;
    const dir = stateDir();
    switch (action) {
      case 'run':
        return runInForeground(dir);
      case 'start':
        return startDaemon(dir, json);
      case 'status':
        return daemonStatus(dir, json);
      case 'stop':
        return stopDaemon(dir, flags.force, json);
      case undefined:
        throw usageError('tend daemon: say what to do: start, stop, status or run', 'Run `tend daemon --help` for details.');
      default: {
        const suggestion = closest(action, actions);
        throw usageError(`tend daemon: unknown action ${JSON.stringify(action)}`, `${suggestion === undefined ? '' : `Did you mean \`${suggestion}\`? `}Use start, stop, status or run.`);
      }
    }
  },
});

async function runInForeground(dir: string): Promise<number> {
  process.title = 'tend daemon';
  const { runDaemon } = await import('../../daemon/daemon.js');
  return runDaemon({ stateDir: dir, version: version(), log: await daemonLog(daemonPaths(dir).log) });
}

async function startDaemon(dir: string, json: boolean): Promise<number> {
  const { client, spawnedPid } = await connectDaemon({ stateDir: dir, start: true });
  try {
    const info = await client.call('ping', {}, { timeoutMs: 10_000 });
    const started = info.pid === spawnedPid;
    if (json) printJson({ running: true, started, ...info });
    else {
      const restoring = started && info.restored.length > 0 ? `; starting again what was running: ${info.restored.join(', ')}` : '';
      process.stdout.write(`${started ? 'started' : 'already running:'} tend daemon, pid ${info.pid} (${dir})${restoring}\n`);
    }
    return 0;
  } finally {
    await client.close();
  }
}

async function daemonStatus(dir: string, json: boolean): Promise<number> {
  const info = await queryDaemonIfRunning('ping', {});
  if (json) printJson(info ? { running: true, ...info } : { running: false, state_dir: dir });
  else if (info) {
    process.stdout.write(`tend daemon running: pid ${info.pid}, up ${formatDuration(info.uptime_ms)}, ${info.services} service(s), ${formatBytes(info.rss_bytes)} resident, socket ${info.socket}\n`);
  } else process.stdout.write(`tend daemon not running (${dir})\n`);
  return info ? 0 : 1;
}

async function stopDaemon(dir: string, force: boolean, json: boolean): Promise<number> {
  const table = systemProcessTable();
  const recorded = runningDaemon(dir, table);
  let answered: ShutdownResult | undefined;
  try {
    answered = await queryDaemonIfRunning('shutdown', {});
  } catch (error) {
    if (!force || !recorded) throw error;
  }
  const target = recorded && (answered === undefined || answered.pid === recorded.pid) ? recorded : undefined;
  if (!answered && !target) {
    if (json) printJson({ running: false, stopped: false, state_dir: dir });
    else process.stdout.write(`tend daemon not running (${dir})\n`);
    return 0;
  }
  let killed = false;
  // Its services stop gracefully first: wait as long as their stop timeouts allow, and some.
  const waitMs = (answered?.stop_budget_ms ?? 0) + STOP_WAIT_MS;
  if (target && !(await waitIdentityGone(table, target, waitMs))) {
    if (!force) {
      const what = answered ? `did not exit within ${Math.round(waitMs / 1000)} s of being asked to stop (its services' stop timeouts allow ${Math.round((answered.stop_budget_ms ?? 0) / 1000)} s)` : 'did not answer the request to stop';
      throw new TendError('DAEMON_UNREACHABLE', { stateDir: dir, reason: `pid ${target.pid} ${what}` });
    }
    sendSignal(table, { kind: 'process', identity: target }, 'SIGKILL');
    killed = await waitIdentityGone(table, target, STOP_WAIT_MS);
  }
  const pid = answered?.pid ?? target?.pid;
  const wanted = answered?.wanted ?? [];
  if (json) printJson({ running: false, stopped: true, pid, killed, services: answered?.stopping ?? null, wanted, log: daemonPaths(dir).log });
  else {
    const later = wanted.length === 0 ? '' : `; the next daemon starts ${wanted.join(', ')} again (\`tend daemon start\`)`;
    process.stdout.write(`stopped tend daemon, pid ${pid}${killed ? ' (killed with SIGKILL)' : ''}${later}\n`);
  }
  return 0;
}
