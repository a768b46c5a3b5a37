/** What the service commands share: reaching the daemon, config files, and output. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { TendError } from '../core/errors.js';
import { resolveStateDir } from '../registry/state-dir.js';
import { connectDaemon } from '../daemon/client.js';
import type { MethodName, ParamsOf, ResultOf } from '../daemon/methods.js';
import type { ServiceConfig, StackConfig } from '../service/definition.js';
import { definitionToJson } from '../supervisor/service-store.js';

export function stateDir(): string {
  return resolveStateDir(process.env);
}

export interface CallOptions {
  /** Start the daemon when none runs. */
  readonly start: boolean;
}

/** One request to the daemon; the connection is closed afterwards. */
export async function callDaemon<M extends MethodName>(method: M, params: ParamsOf<M>, options: CallOptions): Promise<ResultOf<M>> {
  const { client } = await connectDaemon({ stateDir: stateDir(), start: options.start });
  try {
    return await client.call(method, params);
  } finally {
    await client.close();
  }
}

/** Like callDaemon, but undefined when no daemon runs (for commands that only report). */
export async function queryDaemonIfRunning<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M> | undefined> {
  try {
    return await callDaemon(method, params, { start: false });
  } catch (error) {
    if (error instanceof TendError && error.code === 'DAEMON_NOT_RUNNING') return undefined;
    throw error;
  }
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
