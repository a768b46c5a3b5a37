/** What the service commands share: reaching the daemon, config files, and output. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { TendError } from '../core/errors.js';
import { resolveStateDir } from '../registry/state-dir.js';
import { connectDaemon } from '../daemon/client.js';
import type { MethodName, ParamsOf, ProgressOf, ResultOf, StartProgress } from '../daemon/methods.js';
import type { ServiceConfig, StackConfig } from '../service/definition.js';
import { definitionToJson } from '../supervisor/service-store.js';

export function stateDir(): string {
  return resolveStateDir(process.env);
}

export interface CallOptions<M extends MethodName = MethodName> {
  /** Start the daemon when none runs. */
  readonly start: boolean;
  /** Hears the method's progress (a start waiting in the queue), before the result. */
  readonly onProgress?: ((progress: ProgressOf<M>) => void) | undefined;
}

/** One request to the daemon; the connection is closed afterwards. */
export async function callDaemon<M extends MethodName>(method: M, params: ParamsOf<M>, options: CallOptions<M>): Promise<ResultOf<M>> {
  const { client } = await connectDaemon({ stateDir: stateDir(), start: options.start });
  try {
    return await client.call(method, params, { onProgress: options.onProgress });
  } finally {
    await client.close();
  }
}

/** Like callDaemon, but undefined when no daemon runs (for commands that only report). */
export async function queryDaemonIfRunning<M extends MethodName>(method: M, params: ParamsOf<M>, onProgress?: (progress: ProgressOf<M>) => void): Promise<ResultOf<M> | undefined> {
  try {
    return await callDaemon(method, params, { start: false, onProgress });
  } catch (error) {
    if (error instanceof TendError && error.code === 'DAEMON_NOT_RUNNING') return undefined;
    throw error;
  }
}

function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}

/**
 * Says on stderr (stdout stays one JSON document with --json) that a start
 * waits in the queue, at once, then each time its place changes. Ctrl-C
 * ends this client, and the daemon withdraws the start that still waits.
 */
export function reportQueued(): (progress: StartProgress) => void {
  const places = new Map<string, number>();
  return (progress) => {
    const before = places.get(progress.service);
    if (before === progress.place) return;
    places.set(progress.service, progress.place);
    const line =
      before === undefined
        ? `${progress.service}: queued, ${progress.active_processes}/${progress.max_allowed} running, ${ordinal(progress.place)} in line; waiting (Ctrl-C cancels)`
        : `${progress.service}: ${ordinal(progress.place)} in line`;
    process.stderr.write(`${line}\n`);
  };
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * The daemon runs with its own environment: what a service inherits must come
 * from the environment of the command that defined it, so it is copied here.
 */
export function withInheritedEnv(definition: ServiceConfig, env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  if (definition.inheritEnv === false) return definition;
  const names = definition.inheritEnv === true ? Object.keys(env) : definition.inheritEnv;
  const inherited: Record<string, string> = {};
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && name !== 'TEND_ID') inherited[name] = value;
  }
  return { ...definition, env: { ...inherited, ...definition.env }, inheritEnv: false };
}

export function definitionForWire(definition: ServiceConfig): Record<string, unknown> {
  return definitionToJson(withInheritedEnv(definition));
}

const defaultConfigNames = ['tend.yaml', 'tend.yml', 'tend.json'];

/** The config file given with -f, else ./tend.yaml, ./tend.yml or ./tend.json; undefined when none exists and none was named. */
export function findConfigFile(file: string | undefined): string | undefined {
  if (file !== undefined) return resolve(file);
  return defaultConfigNames.map((name) => resolve(name)).find((path) => existsSync(path));
}

export async function loadStack(file: string | undefined): Promise<StackConfig> {
  const path = findConfigFile(file);
  if (path === undefined) {
    throw new TendError('CLI_USAGE', { message: 'no config file: none was given with -f and there is no tend.yaml, tend.yml or tend.json here', hint: 'Write a tend.yaml (see `tend up --help`) or pass -f FILE.' });
  }
  // Loaded only here: the YAML parser is most of the CLI's code.
  const { loadConfig } = await import('../stack/config.js');
  return loadConfig(path);
}

/** `name` and everything it depends on in `stack`, dependencies first. */
export function withDependencies(stack: StackConfig, name: string): ServiceConfig[] {
  const byName = new Map(stack.services.map((s) => [s.name, s]));
  const ordered: ServiceConfig[] = [];
  const visit = (n: string): void => {
    const service = byName.get(n);
    if (!service || ordered.includes(service)) return;
    for (const dependency of service.dependsOn) visit(dependency);
    ordered.push(service);
  };
  visit(name);
  return ordered;
}
