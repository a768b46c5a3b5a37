import { TendError } from '../core/errors.js';
import { readDuration } from '../service/duration.js';
import { closest } from '../spawn/normalize-spec.js';

export interface FlagSpec {
  readonly name: string;
  /** "boolean" takes no value, "string" one, "list" one per use; "optional" may take `=VALUE`. */
  readonly kind: 'boolean' | 'string' | 'list' | 'optional';
  readonly short?: string;
}

export interface ParsedArgs {
  readonly flags: Readonly<Record<string, string | boolean | string[] | undefined>>;
  readonly positionals: readonly string[];
  /** Everything after `--`, untouched. */
  readonly rest: readonly string[] | undefined;
}

export function usageError(message: string, hint?: string): TendError {
  return new TendError('CLI_USAGE', { message, hint });
}

/**
 * An option the command does not take: with the closest one it does take
 * ("did you mean"), or `notes[name]` when the command says why it has none.
 */
function unknownOption(option: string, specs: readonly FlagSpec[], command: string, notes: Readonly<Record<string, string>>): TendError {
  const name = option.replace(/^-+/, '');
  const suggestion = option.startsWith('--') ? closest(name, specs.map((s) => s.name)) : undefined;
  const why = notes[name] ?? (suggestion === undefined ? undefined : `Did you mean \`--${suggestion}\`?`);
  return usageError(`tend ${command}: unknown option ${option}`, `${why === undefined ? '' : `${why} `}Run \`tend ${command} --help\` for the options.`);
}

/** Strict parsing: unknown flags, missing values and stray arguments are usage errors. */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[], command: string, notes: Readonly<Record<string, string>> = {}): ParsedArgs {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short as string, s]));
  const flags: Record<string, string | boolean | string[] | undefined> = {};
  const positionals: string[] = [];
  let rest: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      rest = argv.slice(i + 1);
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const long = arg.startsWith('--');
    const eq = arg.indexOf('=');
    const key = long ? arg.slice(2, eq < 0 ? undefined : eq) : arg.slice(1, 2);
    const spec = long ? byName.get(key) : byShort.get(key);
    if (!spec) throw unknownOption(long ? `--${key}` : `-${key}`, specs, command, notes);
    let value: string | undefined = long ? (eq < 0 ? undefined : arg.slice(eq + 1)) : arg.length > 2 ? arg.slice(2) : undefined;
    if (spec.kind === 'boolean') {
      if (value !== undefined) throw usageError(`tend ${command}: --${spec.name} takes no value`);
      flags[spec.name] = true;
      continue;
    }
    if (spec.kind === 'optional') {
      flags[spec.name] = value ?? true;
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined || value === '--') throw usageError(`tend ${command}: --${spec.name} needs a value`);
    }
    if (spec.kind === 'list') ((flags[spec.name] ??= []) as string[]).push(value);
    else flags[spec.name] = value;
  }
  return { flags, positionals, rest };
}

/** "500ms", "5s", "1.5m", "2h" → milliseconds. A bare number is refused: its unit would be a guess. */
export function parseDuration(text: string, flag: string): number {
  const reading = readDuration(text);
  if (!reading.ok) throw usageError(`invalid duration for --${flag}: ${reading.problem}`, reading.fix);
  return reading.ms;
}

/** "K=V" pairs into an object; the name must be non-empty. */
export function parseEnvPairs(pairs: readonly string[], flag: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usageError(`invalid --${flag} ${JSON.stringify(pair)}: expected NAME=VALUE`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}
