import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import type { ProcessSpec } from '../core/types.js';
import type { ConfigurationPlugin } from './plugin.js';

const PIN_FILES = ['.nvmrc', '.node-version'];

/** The version a project pins, from .nvmrc or .node-version in its directory. */
export function readPinnedNodeVersion(dir: string): string | undefined {
  for (const file of PIN_FILES) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    const line = readFileSync(path, 'utf8').split('\n')[0]?.trim();
    if (line) return line.replace(/^v/, '');
  }
  return undefined;
}

/** The highest installed version matching a pin: "20" matches 20.x.y, "20.11" matches 20.11.y, "20.11.1" only itself. */
export function matchInstalledVersion(pin: string, installed: readonly string[]): string | undefined {
  const want = pin.split('.');
  const matches = installed
    .map((v) => v.replace(/^v/, ''))
    .filter((v) => /^\d+\.\d+\.\d+$/.test(v) && want.every((part, i) => v.split('.')[i] === part));
  return matches.sort((a, b) => compareVersions(b, a))[0];
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

export interface NodeVersionPluginOptions {
  /** nvm's directory (holds versions/node/v*). */
  readonly nvmDir: string;
  /** Directory that relative spec cwds are resolved against (default: process.cwd()). */
  readonly cwd?: string;
  /** The PATH a spec inheriting PATH would get (default: process.env.PATH). */
  readonly inheritedPath?: string | undefined;
}

/**
 * Runs a project's pinned Node version: when the spec's cwd has .nvmrc or
 * .node-version and nvm has a matching version installed, that version's bin
 * directory goes first on the spec's PATH, as `nvm use` would do.
 */
export function nodeVersionPlugin(options: NodeVersionPluginOptions): ConfigurationPlugin {
  const cwdOf = (spec: ProcessSpec): string => resolve(options.cwd ?? process.cwd(), spec.cwd ?? '.');
  return {
    name: 'node-version',
    priority: 100,
    isApplicable: (spec) => readPinnedNodeVersion(cwdOf(spec)) !== undefined,
    enhance(spec) {
      const pin = readPinnedNodeVersion(cwdOf(spec)) as string;
      const versionsDir = join(options.nvmDir, 'versions', 'node');
      const installed = existsSync(versionsDir) ? readdirSync(versionsDir) : [];
      const version = matchInstalledVersion(pin, installed);
      if (!version) throw new Error(`the project pins Node ${pin}, which nvm has not installed in ${versionsDir}`);
      const inherits = spec.inheritEnv === true || (Array.isArray(spec.inheritEnv) && spec.inheritEnv.includes('PATH'));
      const basePath = spec.env?.PATH ?? (inherits ? (options.inheritedPath ?? process.env.PATH) : undefined);
      const bin = join(versionsDir, `v${version}`, 'bin');
      return { ...spec, env: { ...spec.env, PATH: basePath ? `${bin}${delimiter}${basePath}` : bin } };
    },
  };
}

/** The plugins for the integrations found on this machine (today: nvm). */
export function detectPlugins(env: Readonly<Record<string, string | undefined>> = process.env): ConfigurationPlugin[] {
  const nvmDir = env.NVM_DIR ?? join(homedir(), '.nvm');
  return existsSync(join(nvmDir, 'versions', 'node')) ? [nodeVersionPlugin({ nvmDir, inheritedPath: env.PATH })] : [];
}
