/**
 * One tend command, declared once: its help text, its flags, its positional
 * arguments and what it does with them. The kit parses and checks the command
 * line (help, `--json`, unknown flags with "did you mean", stray and missing
 * arguments, service names, durations) so that `run` gets typed, checked
 * values, and every command refuses bad usage with the same words (CLI_USAGE,
 * exit status 2).
 */
import { parseArgs, parseDuration, usageError, type FlagSpec, type ParsedArgs } from './args.js';
import { checkName } from './service-name.js';

/**
 * boolean: `--all`; string: `--log FILE`; list: `-e A=1 -e B=2`; optional:
 * `--inherit-env` or `--inherit-env=PATH`; duration: `--timeout 5s` (a unit is required).
 */
export type FlagKind = 'boolean' | 'string' | 'list' | 'optional' | 'duration';

export interface FlagDef {
  readonly kind: FlagKind;
  readonly short?: string;
}

type FlagValue<K extends FlagKind> = K extends 'boolean'
  ? boolean
  : K extends 'string'
    ? string | undefined
    : K extends 'list'
      ? readonly string[]
      : K extends 'optional'
        ? string | true | undefined
        : number | undefined;

export type FlagDefs = Readonly<Record<string, FlagDef>>;
export type FlagValues<F extends FlagDefs> = { readonly [N in keyof F]: FlagValue<F[N]['kind']> };

export interface PositionalDef {
  /** As the usage line writes it: NAME, N, ACTION. */
  readonly name: string;
  /** Checked with the service-name rule. */
  readonly service?: boolean;
  readonly optional?: boolean;
  /** Takes every remaining argument: none or more when optional, else one or more. */
  readonly variadic?: boolean;
}

type PositionalValue<P extends PositionalDef> = P extends { readonly variadic: true } ? readonly string[] : P extends { readonly optional: true } ? string | undefined : string;
export type PositionalValues<P extends readonly PositionalDef[]> = { readonly [D in P[number] as D['name']]: PositionalValue<D> };

export interface CommandInput<F extends FlagDefs, P extends readonly PositionalDef[]> {
  readonly flags: FlagValues<F>;
  /** `--json` was given (always false for a command that does not declare it). */
  readonly json: boolean;
  readonly args: PositionalValues<P>;
  /** The command after `--`, when the command takes one and it was given. */
  readonly command: readonly string[] | undefined;
  /** The raw parse, for readers that take one whole (the service definition flags). */
  readonly parsed: ParsedArgs;
}

export interface CommandDef<F extends FlagDefs, P extends readonly PositionalDef[]> {
  readonly name: string;
  /** The whole `--help` text; its first line is the usage line quoted in usage errors. */
  readonly help: string;
  readonly flags: F;
  readonly positionals: P;
  /** Whether the command prints one JSON document with `--json`. */
  readonly json?: boolean;
  /** A command to run after `--`: refused when absent. */
  readonly command?: 'optional' | 'required';
  readonly run: (input: CommandInput<F, P>) => Promise<number>;
}

export interface Command {
  readonly name: string;
  readonly help: string;
  readonly run: (argv: readonly string[]) => Promise<number>;
}

export function defineCommand<const F extends FlagDefs, const P extends readonly PositionalDef[]>(def: CommandDef<F, P>): Command {
  const specs: FlagSpec[] = [
    ...Object.entries(def.flags).map(([name, flag]) => ({ name, kind: flag.kind === 'duration' ? 'string' : flag.kind, ...(flag.short === undefined ? {} : { short: flag.short }) }) satisfies FlagSpec),
    ...(def.json === true ? [{ name: 'json', kind: 'boolean' } as const] : []),
    { name: 'help', kind: 'boolean', short: 'h' },
  ];
  const notes = def.json === true ? {} : { json: `\`tend ${def.name}\` prints no JSON document.` };
  return {
    name: def.name,
    help: def.help,
    run: async (argv) => {
      const parsed = parseArgs(argv, specs, def.name, notes);
      if (parsed.flags.help === true) {
        process.stdout.write(`${def.help}\n`);
        return 0;
      }
      const args = checkPositionals(def, parsed.positionals);
      const command = checkCommand(def, parsed.rest);
      return def.run({ flags: typedFlags(def.flags, parsed), json: parsed.flags.json === true, args, command, parsed });
    },
  };
}

/** What the checks below read of a command: its words, not its flags or its body. */
type Shape = Pick<CommandDef<FlagDefs, readonly PositionalDef[]>, 'name' | 'help' | 'positionals' | 'command'>;

function usageLine(help: string): string {
  return help.split('\n', 1)[0] ?? help;
}

function checkCommand(def: Shape, rest: readonly string[] | undefined): readonly string[] | undefined {
  if (def.command === undefined && rest !== undefined) throw usageError(`tend ${def.name}: unexpected argument "--"`, usageLine(def.help));
  if (def.command === 'required' && (rest === undefined || rest.length === 0)) throw usageError(`tend ${def.name}: no command given`, usageLine(def.help));
  return rest;
}

function checkPositionals<P extends readonly PositionalDef[]>(def: Shape & { readonly positionals: P }, given: readonly string[]): PositionalValues<P> {
  const values: Record<string, string | readonly string[] | undefined> = {};
  let next = 0;
  for (const positional of def.positionals) {
    const taken = positional.variadic === true ? given.slice(next) : given.slice(next, next + 1);
    next += taken.length;
    if (taken.length === 0 && positional.optional !== true) {
      throw usageError(`tend ${def.name}: no ${positional.service === true ? 'service name' : positional.name} given`, usageLine(def.help));
    }
    if (positional.service === true) for (const name of taken) checkName(name, def.name);
    values[positional.name] = positional.variadic === true ? taken : taken[0];
  }
  const stray = given[next];
  if (stray !== undefined) throw strayArgument(def, stray);
  return values as PositionalValues<P>;
}

function strayArgument(def: Shape, stray: string): Error {
  const usage = usageLine(def.help);
  if (def.command !== undefined) return usageError(`tend ${def.name}: unexpected ${JSON.stringify(stray)} before --`, `Put the command after --: ${usage.replace(/^Usage: /, '')}`);
  const last = def.positionals.at(-1);
  if (last?.service === true) return usageError(`tend ${def.name}: one service at a time; unexpected ${JSON.stringify(stray)}`, usage);
  return usageError(`tend ${def.name}: unexpected argument ${JSON.stringify(stray)}`, usage);
}

function typedFlags<F extends FlagDefs>(defs: F, parsed: ParsedArgs): FlagValues<F> {
  const values: Record<string, string | boolean | number | readonly string[] | undefined> = {};
  for (const [name, def] of Object.entries(defs)) {
    const raw = parsed.flags[name];
    switch (def.kind) {
      case 'boolean':
        values[name] = raw === true;
        break;
      case 'list':
        values[name] = Array.isArray(raw) ? raw : [];
        break;
      case 'duration':
        values[name] = typeof raw === 'string' ? parseDuration(raw, name) : undefined;
        break;
      default:
        values[name] = raw;
    }
  }
  return values as FlagValues<F>;
}
