import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { TendError } from '../core/errors.js';
import { parseSignal } from '../core/signals.js';
import { MARKER_VARIABLE, strategyNames, type NormalizedSpec, type ProcessSpec, type StrategyChoice } from '../core/types.js';
import { resolveCommand } from './resolve-command.js';

export const DEFAULT_STOP_TIMEOUT_MS = 5000;
const MAX_TIMEOUT_MS = 2_147_483_647;

const knownFields: ReadonlySet<string> = new Set([
  'command',
  'args',
  'cwd',
  'env',
  'inheritEnv',
  'logFile',
  'stdio',
  'name',
  'stopSignal',
  'stopTimeoutMs',
  'strategy',
  'parentDeathSignal',
] satisfies (keyof ProcessSpec)[]);

/** What a spec is normalized against: the manager's own directory and environment. */
export interface SpecContext {
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * Checks a spec and returns its canonical form. Throws a TendError naming the
 * field, the value and the fix for the first problem found; performs no side
 * effect, so nothing is ever started from an invalid spec.
 */
export function normalizeSpec(input: unknown, context: SpecContext): NormalizedSpec {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new TendError('SPEC_INVALID', { value: input });
  const spec = input as Record<string, unknown>;
  for (const field of Object.keys(spec)) {
    if (!knownFields.has(field)) {
      throw new TendError('SPEC_UNKNOWN_FIELD', { field, known: [...knownFields].join(', '), suggestion: closest(field, knownFields) });
    }
  }

  const command = spec.command;
  if (typeof command !== 'string' || command.trim() === '' || command.includes('\0')) throw new TendError('SPEC_COMMAND_EMPTY', { value: command });
  const args = normalizeArgs(spec.args);
  const cwd = normalizeCwd(spec.cwd, context.cwd);
  const env = normalizeEnv(spec.env, spec.inheritEnv, context.env);
  const stdio = spec.stdio ?? 'ignore';
  if (stdio !== 'ignore' && stdio !== 'inherit' && stdio !== 'pipe') throw new TendError('SPEC_STDIO_INVALID', { value: stdio });
  const logFile = normalizeLogFile(spec.logFile, context.cwd);
  if (logFile !== undefined && spec.stdio !== undefined) {
    throw new TendError('SPEC_STDIO_INVALID', { value: spec.stdio, reason: 'With `logFile` set, output goes to the file: drop `stdio`.' });
  }
  const name = spec.name;
  if (name !== undefined && (typeof name !== 'string' || !/^[A-Za-z0-9._@-]{1,128}$/.test(name))) throw new TendError('SPEC_NAME_INVALID', { value: name });
  const stopSignal = spec.stopSignal === undefined ? 'SIGTERM' : parseSignal(spec.stopSignal);
  if (stopSignal === undefined) throw new TendError('SPEC_SIGNAL_UNKNOWN', { value: spec.stopSignal, field: 'stopSignal' });
  const stopTimeoutMs = normalizeTimeout(spec.stopTimeoutMs, 'stopTimeoutMs') ?? DEFAULT_STOP_TIMEOUT_MS;
  const strategy = spec.strategy ?? 'auto';
  if (strategy !== 'auto' && !strategyNames.includes(strategy as never)) throw new TendError('SPEC_STRATEGY_UNKNOWN', { value: strategy });
  const parentDeathSignal = spec.parentDeathSignal ?? true;
  if (typeof parentDeathSignal !== 'boolean') throw new TendError('SPEC_OPTION_INVALID', { field: 'parentDeathSignal', expected: 'a boolean', value: parentDeathSignal });

  const file = resolveCommand(command, cwd, env.PATH);
  return {
    command,
    file,
    args,
    cwd,
    env,
    logFile,
    stdio,
    name: name,
    stopSignal,
    stopTimeoutMs,
    strategy: strategy as StrategyChoice,
    parentDeathSignal,
  };
}

/** Validates a timeout option given in milliseconds; undefined stays undefined. */
export function normalizeTimeout(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_TIMEOUT_MS) {
    throw new TendError('SPEC_TIMEOUT_INVALID', { field, value });
  }
  return value;
}

function normalizeArgs(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new TendError('SPEC_ARGS_INVALID', { value });
  const args: string[] = [];
  // An index loop, not forEach: forEach skips the holes of a sparse array.
  for (let index = 0; index < value.length; index++) {
    const arg: unknown = value[index];
    if (typeof arg !== 'string' || arg.includes('\0')) throw new TendError('SPEC_ARGS_INVALID', { value: arg, index });
    args.push(arg);
  }
  return args;
}

function normalizeCwd(value: unknown, base: string): string {
  if (value === undefined) return base;
  if (typeof value !== 'string' || value === '' || value.includes('\0')) {
    throw new TendError('SPEC_CWD_NOT_DIRECTORY', { cwd: value, reason: 'expected a non-empty path string' });
  }
  const cwd = resolve(base, value);
  let stat;
  try {
    stat = statSync(cwd);
  } catch {
    throw new TendError('SPEC_CWD_MISSING', { cwd });
  }
  if (!stat.isDirectory()) throw new TendError('SPEC_CWD_NOT_DIRECTORY', { cwd });
  try {
    accessSync(cwd, constants.X_OK);
  } catch {
    throw new TendError('SPEC_CWD_NOT_DIRECTORY', { cwd, reason: 'no permission to enter it' });
  }
  return cwd;
}

function checkEnvName(name: string, field: string): void {
  if (name === '' || name.includes('=') || name.includes('\0')) throw new TendError('SPEC_ENV_NAME_INVALID', { name, field });
}

function normalizeEnv(value: unknown, inherit: unknown, parent: SpecContext['env']): Record<string, string> {
  const env: Record<string, string> = {};
  if (inherit === true) {
    for (const [k, v] of Object.entries(parent)) if (v !== undefined && k !== MARKER_VARIABLE) env[k] = v;
  } else if (Array.isArray(inherit)) {
    for (const name of inherit as unknown[]) {
      if (typeof name !== 'string') throw new TendError('SPEC_INHERIT_ENV_INVALID', { value: inherit });
      checkEnvName(name, 'inheritEnv');
      const v = parent[name];
      if (v !== undefined && name !== MARKER_VARIABLE) env[name] = v;
    }
  } else if (inherit !== undefined && inherit !== false) {
    throw new TendError('SPEC_INHERIT_ENV_INVALID', { value: inherit });
  }
  if (value === undefined) return env;
  if (!isPlainObject(value)) throw new TendError('SPEC_ENV_INVALID', { value });
  for (const [name, v] of Object.entries(value)) {
    checkEnvName(name, 'env');
    if (name === MARKER_VARIABLE) throw new TendError('SPEC_ENV_RESERVED', { name });
    if (typeof v !== 'string' || v.includes('\0')) throw new TendError('SPEC_ENV_VALUE_INVALID', { name, value: v });
    env[name] = v;
  }
  return env;
}

/** A Map, a class instance or an array is not an environment: their entries are not own enumerable properties. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function normalizeLogFile(value: unknown, base: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '' || value.includes('\0')) throw new TendError('SPEC_LOG_FILE_INVALID', { value, reason: 'expected a non-empty path string' });
  const path = resolve(base, value);
  const dir = dirname(path);
  let dirStat;
  try {
    dirStat = statSync(dir);
  } catch {
    throw new TendError('SPEC_LOG_FILE_INVALID', { value, reason: `its directory ${dir} does not exist` });
  }
  if (!dirStat.isDirectory()) throw new TendError('SPEC_LOG_FILE_INVALID', { value, reason: `${dir} is not a directory` });
  try {
    const stat = statSync(path);
    if (stat.isDirectory()) throw new TendError('SPEC_LOG_FILE_INVALID', { value, reason: 'it is a directory' });
    accessSync(path, constants.W_OK);
  } catch (error) {
    if (error instanceof TendError) throw error;
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new TendError('SPEC_LOG_FILE_INVALID', { value, reason: 'it is not writable by this user' });
    try {
      accessSync(dir, constants.W_OK);
    } catch {
      throw new TendError('SPEC_LOG_FILE_INVALID', { value, reason: `its directory ${dir} is not writable by this user` });
    }
  }
  return path;
}

/** The known name closest to a misspelt one (edit distance ≤ 2), for "did you mean". */
export function closest(input: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(input.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
