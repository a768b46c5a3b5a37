import { accessSync, constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './package-root.js';

/** The compiled helpers in native/bin, built by scripts/build-native.mjs at install time. */
export type NativeHelper = 'tend-shim' | 'tend-nsinit' | 'tend-reaper';

export interface NativeHelperInfo {
  readonly path: string | undefined;
  /** Why the helper is missing, when it is. */
  readonly reason: string | undefined;
}

const cache = new Map<NativeHelper, NativeHelperInfo>();

export function locateNativeHelper(name: NativeHelper): NativeHelperInfo {
  const known = cache.get(name);
  if (known) return known;
  const path = join(packageRoot(), 'native', 'bin', name);
  let info: NativeHelperInfo;
  try {
    accessSync(path, constants.X_OK);
    info = { path, reason: undefined };
  } catch {
    info = { path: undefined, reason: buildFailureReason(name) };
  }
  cache.set(name, info);
  return info;
}

function buildFailureReason(name: NativeHelper): string {
  const key = name.slice('tend-'.length);
  try {
    const status = JSON.parse(readFileSync(join(packageRoot(), 'native', 'bin', 'status.json'), 'utf8')) as Record<string, { error?: string | null } | undefined>;
    const error = status[key]?.error;
    if (error) return `${name} was not built at install time: ${error}`;
  } catch {
    /* no status file: the build never ran */
  }
  return `${name} is missing from ${join(packageRoot(), 'native', 'bin')} (run \`npm rebuild tend\` with a C compiler installed)`;
}
