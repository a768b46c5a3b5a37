/**
 * Service definitions as they cross the daemon's socket and rest on disk
 * (`<state>/services/NAME.json`, with whether the service should be running).
 * Both sources are checked field by field: a definition from a client of
 * another tend version, or a file damaged on disk, is refused with the field
 * named rather than half-used.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { TendError, errnoOf } from '../core/errors.js';
import { writeFileAtomicSync } from '../registry/atomic-file.js';
import type { ServiceExitInfo } from './service-info.js';
import * as rules from '../service/rules.js';
import { type ReadyCheck, type ServiceConfig, type UnresponsiveConfig } from '../service/definition.js';

export { SERVICE_NAME_PATTERN } from '../service/name.js';
const STORE_SCHEMA = 1;

type Json = Record<string, unknown>;

function invalid(field: string, expected: string, value: unknown): TendError {
  return new TendError('SPEC_OPTION_INVALID', { field, expected, value });
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function string(o: Json, key: string, path: string): string {
  const value = o[key];
  if (typeof value !== 'string' || value.includes('\0')) throw invalid(`${path}.${key}`, 'a string', value);
  return value;
}

function optionalString(o: Json, key: string, path: string): string | undefined {
  return o[key] === undefined || o[key] === null ? undefined : string(o, key, path);
}

function strings(o: Json, key: string, path: string): string[] {
  const value = o[key];
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string' && !v.includes('\0'))) throw invalid(`${path}.${key}`, 'an array of strings without NUL bytes', value);
  return value;
}

function integer(o: Json, key: string, path: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = o[key];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw invalid(`${path}.${key}`, `an integer from ${min} to ${max}`, value);
  return value;
}

/** A field that obeys one of the service rules, in the rule's words. */
function obey<T>(rule: rules.Rule<T>, value: unknown, field: string): T {
  const read = rule.read(value);
  if (read === undefined) throw invalid(field, rule.expected, value);
  return read;
}

function port(value: unknown, field: string): number {
  return obey(rules.port, value, field);
}

function readyCheck(value: unknown, path: string): ReadyCheck | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw invalid(path, 'a readiness check { tcp | http | log, timeoutMs }', value);
  const timeoutMs = integer(value, 'timeoutMs', path, 0);
  if (value.tcp !== undefined) return { tcp: port(value.tcp, `${path}.tcp`), timeoutMs };
  if (typeof value.http === 'string') {
    if (!URL.canParse(value.http) || !/^https?:$/.test(new URL(value.http).protocol)) throw invalid(`${path}.http`, 'an http(s) URL', value.http);
    return { http: value.http, timeoutMs };
  }
  if (typeof value.log === 'string') {
    try {
      new RegExp(value.log);
    } catch {
      throw invalid(`${path}.log`, 'a valid regular expression', value.log);
    }
    return { log: value.log, timeoutMs };
  }
  throw invalid(path, 'one of tcp, http or log', value);
}

function unresponsive(value: unknown, path: string): UnresponsiveConfig | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw invalid(path, 'an object { cpuWindowMs, probeIntervalMs, probeFailures, restart }', value);
  const optionalMs = (key: string): number | undefined => (value[key] === undefined || value[key] === null ? undefined : integer(value, key, path, 0));
  if (typeof value.restart !== 'boolean') throw invalid(`${path}.restart`, 'true or false', value.restart);
  return { cpuWindowMs: optionalMs('cpuWindowMs'), probeIntervalMs: optionalMs('probeIntervalMs'), probeFailures: integer(value, 'probeFailures', path, 1), restart: value.restart };
}

/** Checks a definition received over the socket or read from disk; `path` names it in errors. */
export function checkDefinition(value: unknown, path = 'service'): ServiceConfig {
  if (!isObject(value)) throw invalid(path, 'a service definition object', value);
  const name = string(value, 'name', path);
  obey(rules.serviceName, name, `${path}.name`);
  const cwd = string(value, 'cwd', path);
  if (!isAbsolute(cwd)) throw invalid(`${path}.cwd`, 'an absolute directory', cwd);
  const env = value.env;
  if (!isObject(env) || !Object.entries(env).every(([k, v]) => typeof v === 'string' && !v.includes('\0') && !k.includes('\0'))) throw invalid(`${path}.env`, 'an object of strings without NUL bytes', env);
  // The daemon's environment is not the service's: the client copies what is inherited into env.
  if (value.inheritEnv !== false) throw invalid(`${path}.inheritEnv`, 'false (the client copies inherited variables into env)', value.inheritEnv);
  const log = optionalString(value, 'log', path);
  if (log !== undefined && !isAbsolute(log)) throw invalid(`${path}.log`, 'an absolute file path', log);
  const restart = obey(rules.restartPolicy, value.restart, `${path}.restart`);
  let restartLimit: ServiceConfig['restartLimit'];
  if (value.restartLimit !== undefined && value.restartLimit !== null) {
    const limit = value.restartLimit;
    if (!isObject(limit)) throw invalid(`${path}.restartLimit`, 'an object { maxRestarts, backoffMs, maxBackoffMs }', limit);
    const maxRestarts = limit.maxRestarts === null ? Number.POSITIVE_INFINITY : integer(limit, 'maxRestarts', `${path}.restartLimit`, 0);
    restartLimit = { maxRestarts, backoffMs: integer(limit, 'backoffMs', `${path}.restartLimit`, 0), maxBackoffMs: integer(limit, 'maxBackoffMs', `${path}.restartLimit`, 0) };
    if (restartLimit.maxBackoffMs < restartLimit.backoffMs) throw invalid(`${path}.restartLimit.maxBackoffMs`, `at least backoffMs (${restartLimit.backoffMs})`, restartLimit.maxBackoffMs);
  }
  const ports = value.ports;
  if (!Array.isArray(ports)) throw invalid(`${path}.ports`, 'an array of ports', ports);
  const strategy = obey(rules.strategy, value.strategy, `${path}.strategy`);
  const stopSignal = obey(rules.stopSignal, value.stopSignal, `${path}.stopSignal`);
  if (typeof value.exemptFromLimit !== 'boolean') throw invalid(`${path}.exemptFromLimit`, 'true or false', value.exemptFromLimit);
  const dependsOn = strings(value, 'dependsOn', path);
  for (const dependency of dependsOn) {
    if (rules.serviceName.read(dependency) === undefined || dependency === name) throw invalid(`${path}.dependsOn`, 'names of other services', dependsOn);
  }
  const command = string(value, 'command', path);
  if (command.trim() === '') throw invalid(`${path}.command`, 'a program to run', command);
  return {
    name,
    command,
    args: strings(value, 'args', path),
    cwd,
    env: env as Record<string, string>,
    inheritEnv: false,
    log,
    restart,
    restartLimit,
    ready: readyCheck(value.ready, `${path}.ready`),
    ports: ports.map((p, i) => port(p, `${path}.ports[${i}]`)),
    dependsOn,
    stopSignal,
    stopTimeoutMs: integer(value, 'stopTimeoutMs', path, 0),
    strategy,
    exemptFromLimit: value.exemptFromLimit,
    unresponsive: unresponsive(value.unresponsive, `${path}.unresponsive`),
  };
}

/** JSON for a definition: Infinity (no restart limit) has no JSON form, so it travels as null. */
export function definitionToJson(definition: ServiceConfig): Json {
  const limit = definition.restartLimit;
  return {
    ...definition,
    restartLimit: limit === undefined ? null : { ...limit, maxRestarts: Number.isFinite(limit.maxRestarts) ? limit.maxRestarts : null },
  };
}

/** Whether two definitions would run the same thing the same way. */
export function sameDefinition(a: ServiceConfig, b: ServiceConfig): boolean {
  return JSON.stringify(definitionToJson(a)) === JSON.stringify(definitionToJson(b));
}

/** How a service that is not running ended, so a new daemon can still say why. */
export interface StoredOutcome {
  readonly state: 'stopped' | 'exited' | 'failed';
  readonly reason: string | null;
  readonly restarts: number;
  readonly lastExit: ServiceExitInfo | null;
}

export interface StoredService {
  readonly definition: ServiceConfig;
  /** Should be running: the next daemon starts it. */
  readonly wanted: boolean;
  readonly outcome?: StoredOutcome | undefined;
}

function outcomeOf(value: unknown): StoredOutcome | undefined {
  if (!isObject(value) || !['stopped', 'exited', 'failed'].includes(value.state as string)) return undefined;
  const exit = value.lastExit;
  const lastExit = isObject(exit) && typeof exit.at === 'string' ? { code: typeof exit.code === 'number' ? exit.code : null, signal: typeof exit.signal === 'string' ? exit.signal : null, at: exit.at } : null;
  return {
    state: value.state as StoredOutcome['state'],
    reason: typeof value.reason === 'string' ? value.reason : null,
    restarts: typeof value.restarts === 'number' && Number.isSafeInteger(value.restarts) ? value.restarts : 0,
    lastExit,
  };
}

/** One file per service; each is replaced atomically, so concurrent writers never tear one. */
export class ServiceStore {
  constructor(
    readonly dir: string,
    private readonly warn: (message: string) => void,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  save(service: StoredService): void {
    const record = { v: STORE_SCHEMA, wanted: service.wanted, definition: definitionToJson(service.definition), outcome: service.outcome ?? null };
    writeFileAtomicSync(this.#path(service.definition.name), `${JSON.stringify(record)}\n`);
  }

  remove(name: string): void {
    try {
      unlinkSync(this.#path(name));
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw error;
    }
  }

  /**
   * Every stored service; a damaged file is moved aside (NAME.json.corrupt-TIME)
   * with a warning. A reader that only reports (no daemon runs) passes
   * `{ moveDamaged: false }`: the file is skipped with the warning, and left for the daemon.
   */
  load(options: { readonly moveDamaged?: boolean } = {}): StoredService[] {
    const services: StoredService[] = [];
    for (const file of readdirSync(this.dir).sort()) {
      if (!file.endsWith('.json')) continue;
      const path = join(this.dir, file);
      try {
        const value = JSON.parse(readFileSync(path, 'utf8')) as unknown;
        if (!isObject(value) || value.v !== STORE_SCHEMA || typeof value.wanted !== 'boolean') throw new Error('not a tend service file of this version');
        const definition = checkDefinition(value.definition, file);
        if (`${definition.name}.json` !== file) throw new Error(`it names the service ${JSON.stringify(definition.name)}`);
        services.push({ definition, wanted: value.wanted, outcome: outcomeOf(value.outcome) });
      } catch (error) {
        if (errnoOf(error) === 'ENOENT') continue;
        if (options.moveDamaged === false) {
          this.warn(`service file ${path} is damaged (${(error as Error).message}); the daemon will move it aside`);
          continue;
        }
        const aside = `${path}.corrupt-${Date.now()}`;
        try {
          renameSync(path, aside);
        } catch {
          // Another daemon moved it already.
        }
        this.warn(`service file ${path} is damaged (${(error as Error).message}); moved aside to ${aside}`);
      }
    }
    return services;
  }

  #path(name: string): string {
    return join(this.dir, `${name}.json`);
  }
}
