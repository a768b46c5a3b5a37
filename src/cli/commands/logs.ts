import { closeSync, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { TendError, errnoOf } from '../../core/errors.js';
import { daemonPaths } from '../../daemon/paths.js';
import { tailLines } from '../../supervisor/rotating-log.js';
import { usageError } from '../args.js';
import { defineCommand } from '../command-kit.js';
import { queryDaemonIfRunning, stateDir } from '../daemon-client.js';

export const help = `Usage: tend logs NAME [-n N] [-f]

Prints the last lines of a service's output (stdout and stderr, as written),
reading on into its rotated files when needed. Works while the daemon is
down too.

Options:
  -n, --lines N   how many lines (default 50; 0 prints none, for -f)
  -f, --follow    keep printing new output until Ctrl-C, across rotations
  -h, --help      show this help`;

const FOLLOW_POLL_MS = 200;

/** The log file: from the daemon when it runs, else from the stored definition, else the default place. */
async function logPathOf(name: string): Promise<string> {
  const dir = stateDir();
  try {
    const info = await queryDaemonIfRunning('info', { name });
    if (info) {
      if (info.log === null) throw usageError(`tend logs: ${name} has no log file`);
      return info.log;
    }
  } catch (error) {
    // Unknown to the daemon: it may have been deleted; its log files stay.
    if (!(error instanceof Error && 'code' in error && error.code === 'SERVICE_UNKNOWN')) throw error;
  }
  try {
    const stored = JSON.parse(readFileSync(join(daemonPaths(dir).services, `${name}.json`), 'utf8')) as { definition?: { log?: unknown } };
    if (typeof stored.definition?.log === 'string') return stored.definition.log;
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT' && !(error instanceof SyntaxError)) throw error;
  }
  const path = join(daemonPaths(dir).logs, `${name}.log`);
  try {
    statSync(path);
  } catch {
    const known = readdirSafe(daemonPaths(dir).services).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
    throw new TendError('SERVICE_UNKNOWN', { name, known: known.join(', ') || undefined });
  }
  return path;
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Where the current log file ends now: the tail is printed up to here, and following starts here. */
function endOf(path: string): { ino: number; size: number } | undefined {
  try {
    const { ino, size } = statSync(path);
    return { ino, size };
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw error;
  }
}

async function follow(path: string, from: { ino: number; size: number } | undefined, stop: AbortSignal): Promise<void> {
  let fd: number | undefined;
  let ino = -1;
  let offset = 0;
  const buffer = Buffer.allocUnsafe(64 * 1024);
  const open = (start: { ino: number; size: number } | undefined): void => {
    try {
      const next = openSync(path, 'r');
      const stat = fstatSync(next);
      if (fd !== undefined) closeSync(fd);
      fd = next;
      ino = stat.ino;
      // The same file as when the tail was printed: go on from where it ended. A new one (rotated meanwhile): from its start.
      offset = start !== undefined && start.ino === stat.ino ? Math.min(start.size, stat.size) : 0;
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw error;
    }
  };
  open(from);
  while (!stop.aborted) {
    if (fd !== undefined) {
      for (;;) {
        const n = readSync(fd, buffer, 0, buffer.length, offset);
        if (n === 0) break;
        offset += n;
        process.stdout.write(Buffer.from(buffer.subarray(0, n)));
      }
    }
    let current: { ino: number; size: number } | undefined;
    try {
      current = statSync(path);
    } catch {
      current = undefined;
    }
    // Rotated (a new file at the path) or truncated: read the new file from its start.
    if (current !== undefined && (current.ino !== ino || current.size < offset)) open(undefined);
    await delay(FOLLOW_POLL_MS, undefined, { signal: stop }).catch(() => undefined);
  }
  if (fd !== undefined) closeSync(fd);
}

export const { run } = defineCommand({
  name: 'logs',
  help,
  flags: { lines: { kind: 'string', short: 'n' }, follow: { kind: 'boolean', short: 'f' } },
  positionals: [{ name: 'NAME', service: true }],
  run: ({ args, flags }) => logs(args.NAME, flags.lines ?? '50', flags.follow),
});

async function logs(name: string, linesText: string, keepFollowing: boolean): Promise<number> {
  if (!/^\d+$/.test(linesText)) throw usageError(`tend logs: invalid --lines ${JSON.stringify(linesText)}: expected a whole number`);
  const path = await logPathOf(name);
  // Lines written while the tail is read are left to the follower: none lost, none printed twice.
  const end = endOf(path);
  const lines = tailLines(path, Number(linesText), { until: end });
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
  if (!keepFollowing) return 0;
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await follow(path, end, abort.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return 0;
}
