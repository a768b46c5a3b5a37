import { lstatSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { TendError, errnoOf } from '../core/errors.js';

/** $TEND_HOME, else $XDG_STATE_HOME/tend, else ~/.local/state/tend. */
export function resolveStateDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.TEND_HOME) return resolve(env.TEND_HOME);
  if (env.XDG_STATE_HOME) return join(resolve(env.XDG_STATE_HOME), 'tend');
  return join(env.HOME ?? homedir(), '.local', 'state', 'tend');
}

/**
 * Creates the state directory (0700) if needed and refuses one that another
 * user could tamper with: records in it decide which processes tend kills.
 */
export function ensureStateDir(dir: string): string {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const reason = errnoOf(error) === 'EEXIST' || errnoOf(error) === 'ENOTDIR' ? 'it (or a parent) is not a directory' : (error as Error).message;
    throw new TendError('STATE_DIR_UNSAFE', { dir, reason, fix: 'Remove it or point TEND_HOME at a directory.' }, { cause: error });
  }
  const stat = lstatSync(dir);
  if (!stat.isDirectory()) throw new TendError('STATE_DIR_UNSAFE', { dir, reason: 'it is not a directory', fix: `Remove it or point TEND_HOME elsewhere.` });
  const uid = process.geteuid?.();
  if (uid !== undefined && stat.uid !== uid) {
    throw new TendError('STATE_DIR_UNSAFE', { dir, reason: `it is owned by uid ${stat.uid}, not by you (uid ${uid})`, fix: `Run \`chown ${uid} ${dir}\` or point TEND_HOME at a directory of your own.` });
  }
  if ((stat.mode & 0o022) !== 0) {
    const mode = (stat.mode & 0o777).toString(8);
    throw new TendError('STATE_DIR_UNSAFE', { dir, reason: `it is writable by ${stat.mode & 0o002 ? 'others' : 'its group'} (mode ${mode})`, fix: `Run \`chmod 700 ${dir}\`.` });
  }
  for (const sub of ['records', 'managers']) {
    const path = join(dir, sub);
    try {
      mkdirSync(path, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new TendError('STATE_DIR_UNSAFE', { dir, reason: `${path} is not a directory (${errnoOf(error) ?? (error as Error).message})`, fix: `Move ${path} away.` }, { cause: error });
    }
  }
  return dir;
}
