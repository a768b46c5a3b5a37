import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, resolve } from 'node:path';
import { TendError } from '../core/errors.js';

/** What execvp() searches when PATH is unset: the same system directories, so `true` works in an empty environment. */
export const DEFAULT_SEARCH_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

type Verdict = { ok: true } | { ok: false; reason: string };

function checkExecutable(path: string): Verdict | undefined {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return undefined;
  }
  if (stat.isDirectory()) return { ok: false, reason: 'a directory' };
  if (!stat.isFile()) return { ok: false, reason: 'not a regular file' };
  try {
    accessSync(path, constants.X_OK);
    // root passes X_OK when any execute bit is set; with none set, exec fails for root too.
    if ((stat.mode & 0o111) === 0) return { ok: false, reason: 'not executable (no execute permission bits)' };
    return { ok: true };
  } catch {
    return { ok: false, reason: 'not executable by this user' };
  }
}

/**
 * Resolves `command` to an absolute path the way the child's execvp() would:
 * a name with a slash is relative to the child's cwd; a bare name is searched
 * in the child's own PATH (not the manager's), or the default search path
 * when the spec sets none. Throws SPEC_COMMAND_NOT_FOUND / _NOT_EXECUTABLE.
 */
export function resolveCommand(command: string, cwd: string, pathVariable: string | undefined): string {
  if (command.includes('/')) {
    const path = resolve(cwd, command);
    const verdict = checkExecutable(path);
    if (!verdict) throw new TendError('SPEC_COMMAND_NOT_FOUND', { command, searched: `no file at ${path}` });
    if (!verdict.ok) throw new TendError('SPEC_COMMAND_NOT_EXECUTABLE', { command, path, reason: verdict.reason });
    return path;
  }
  const searchPath = pathVariable ?? DEFAULT_SEARCH_PATH;
  let rejected: { path: string; reason: string } | undefined;
  for (const entry of searchPath.split(delimiter)) {
    const dir = entry === '' ? cwd : isAbsolute(entry) ? entry : resolve(cwd, entry);
    const path = resolve(dir, command);
    const verdict = checkExecutable(path);
    if (verdict?.ok) return path;
    if (verdict && !rejected) rejected = { path, reason: verdict.reason };
  }
  if (rejected) throw new TendError('SPEC_COMMAND_NOT_EXECUTABLE', { command, ...rejected });
  const searched = pathVariable === undefined ? `the spec sets no PATH; searched the default ${DEFAULT_SEARCH_PATH}` : `PATH=${pathVariable}`;
  throw new TendError('SPEC_COMMAND_NOT_FOUND', { command, searched });
}
