/**
 * The one catalog of tend's error codes. Every code has a message template
 * that names the field, the value and the fix; docs/errors.md documents every
 * code (a test fails when one is missing there).
 */

/** Renders a value for an error message: strings quoted, everything else typed. */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return `${JSON.stringify(value)} (string)`;
    case 'number':
    case 'boolean':
    case 'bigint':
      return `${value} (${typeof value})`;
    case 'undefined':
      return 'undefined';
    case 'symbol':
      return `${value.toString()} (symbol)`;
    case 'function':
      return 'a function';
    default:
      if (value === null) return 'null';
      return `${safeJson(value)} (${Array.isArray(value) ? 'array' : 'object'})`;
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

const str = (v: unknown): string => String(v);

/**
 * One code: what the CLI exits with (2: the request was wrong, 1: carrying
 * it out failed), the HTTP status the API answers with, and the message
 * template, whose parameter is the code's typed details.
 */
export interface CodeSpec<D> {
  readonly exit: 1 | 2;
  readonly http: number;
  readonly message: (details: D) => string;
}

/** The request was wrong: CLI exit 2. */
function usage<D = Record<string, never>>(message: (d: D) => string, http = 400): CodeSpec<D> {
  return { exit: 2, http, message };
}

/** Carrying out the request failed: CLI exit 1. */
function failure<D = Record<string, never>>(message: (d: D) => string, http = 500): CodeSpec<D> {
  return { exit: 1, http, message };
}

type Opt<T> = T | undefined;

const catalog = {
  // Spec validation (the library's ProcessSpec)
  SPEC_INVALID: usage<{ value: unknown }>((d) =>
    `Expected the process spec to be an object, got ${describeValue(d.value)}. Pass { command, args?, cwd?, env?, ... }.`),
  SPEC_UNKNOWN_FIELD: usage<{ field: string; known: string; suggestion?: Opt<string> }>((d) =>
    `Unknown spec field \`${str(d.field)}\`. Known fields: ${str(d.known)}.${d.suggestion ? ` Did you mean \`${str(d.suggestion)}\`?` : ''}`),
  SPEC_COMMAND_EMPTY: usage<{ value: unknown }>((d) =>
    `Expected the \`command\` field to be a non-empty string, got ${describeValue(d.value)}. Name the program to run, e.g. "node" or "/usr/bin/env".`),
  SPEC_COMMAND_NOT_FOUND: usage<{ command: string; searched: string }>((d) =>
    `Command ${JSON.stringify(d.command)} was not found in the spec's PATH (${str(d.searched)}). Give an absolute path, or put its directory in env.PATH (or inheritEnv: ["PATH"]).`),
  SPEC_COMMAND_NOT_EXECUTABLE: usage<{ command: string; path: string; reason: string }>((d) =>
    `Command ${JSON.stringify(d.command)} resolves to ${JSON.stringify(d.path)}, which is ${str(d.reason)}. Point \`command\` at an executable file (chmod +x if it is a script).`),
  SPEC_ARGS_INVALID: usage<{ value: unknown; index?: Opt<number> }>((d) =>
    `Expected \`args\` to be an array of strings without NUL bytes, got ${describeValue(d.value)}${d.index === undefined ? '' : ` (at index ${str(d.index)})`}. Pass each argument as its own string.`),
  SPEC_CWD_MISSING: usage<{ cwd: string }>((d) =>
    `The \`cwd\` directory ${JSON.stringify(d.cwd)} does not exist. Create it or pass an existing directory.`),
  SPEC_CWD_NOT_DIRECTORY: usage<{ cwd: unknown; reason?: Opt<string> }>((d) =>
    `The \`cwd\` ${JSON.stringify(d.cwd)} is not a directory${d.reason ? ` (${str(d.reason)})` : ''}. Pass a directory the child may enter.`),
  SPEC_ENV_INVALID: usage<{ value: unknown }>((d) =>
    `Expected \`env\` to be an object of string values, got ${describeValue(d.value)}. Pass e.g. { PATH: "/usr/bin" }.`),
  SPEC_ENV_NAME_INVALID: usage<{ name: string; field: string }>((d) =>
    `Environment variable name ${JSON.stringify(d.name)} in \`${str(d.field)}\` is invalid: a name must be non-empty and contain neither "=" nor a NUL byte. Rename it.`),
  SPEC_ENV_VALUE_INVALID: usage<{ name: string; value: unknown }>((d) =>
    `Expected \`env.${str(d.name)}\` to be a string without NUL bytes, got ${describeValue(d.value)}. Convert it with String(...) or drop it.`),
  SPEC_ENV_RESERVED: usage<{ name: string }>((d) =>
    `\`env.${str(d.name)}\` is reserved: tend sets it on every child to find the whole tree. Remove it from the spec.`),
  SPEC_INHERIT_ENV_INVALID: usage<{ value: unknown }>((d) =>
    `Expected \`inheritEnv\` to be true, false or an array of variable names, got ${describeValue(d.value)}.`),
  SPEC_LOG_FILE_INVALID: usage<{ value: unknown; reason: string }>((d) =>
    `The \`logFile\` ${describeValue(d.value)} cannot be used: ${str(d.reason)}. Pass a file path in an existing, writable directory.`),
  SPEC_STDIO_INVALID: usage<{ value: unknown; reason?: Opt<string> }>((d) =>
    `Expected \`stdio\` to be "ignore", "inherit" or "pipe", got ${describeValue(d.value)}.${d.reason ? ` ${str(d.reason)}` : ''}`),
  SPEC_NAME_INVALID: usage<{ value: unknown }>((d) =>
    `Expected \`name\` to be 1-128 characters of letters, digits, ".", "_", "-" or "@", got ${describeValue(d.value)}. Rename it.`),
  SPEC_SIGNAL_UNKNOWN: usage<{ value: unknown; field: string }>((d) =>
    `Unknown signal ${describeValue(d.value)} in \`${str(d.field)}\`. Use a name such as "SIGTERM", "SIGINT" or "SIGHUP", or its number.`),
  SPEC_TIMEOUT_INVALID: usage<{ field: string; value: unknown }>((d) =>
    `Expected \`${str(d.field)}\` to be a non-negative integer number of milliseconds, got ${describeValue(d.value)}.`),
  SPEC_STRATEGY_UNKNOWN: usage<{ value: unknown }>((d) =>
    `Unknown strategy ${describeValue(d.value)}. Use one of "auto", "cgroup", "pidns", "pgroup".`),
  SPEC_OPTION_INVALID: usage<{ field: string; expected: string; value: unknown }>((d) =>
    `Expected \`${str(d.field)}\` to be ${str(d.expected)}, got ${describeValue(d.value)}.`),
  CONFIG_INVALID: usage<{ file: string; line: number; field?: Opt<string>; message: string; fix: string }>((d) =>
    `${str(d.file)}:${str(d.line)}: ${d.field === undefined ? '' : `${str(d.field)}: `}${str(d.message)}. Fix: ${str(d.fix)}`),
  STRATEGY_UNAVAILABLE: usage<{ strategy: string; reason: string }>((d) =>
    `Strategy "${str(d.strategy)}" is not available on this machine: ${str(d.reason)}. Run \`tend detect\` to see what is, or use strategy "auto".`),
  CLI_USAGE: usage<{ message: string; hint?: Opt<string> }>((d) => `${str(d.message)}${d.hint ? `\n${str(d.hint)}` : ''}`),

  // Processes
  START_FAILED: failure<{ command: string; reason: string }>((d) =>
    `Could not start ${JSON.stringify(d.command)}: ${str(d.reason)}.`),
  CONTAINMENT_FAILED: failure<{ strategy: string; reason: string; fix?: Opt<string> }>((d) =>
    `Could not set up ${str(d.strategy)} containment: ${str(d.reason)}.${d.fix ? ` ${str(d.fix)}` : ''}`),
  HANDLE_UNKNOWN: failure<{ handle: unknown }>((d) =>
    `No managed process has the handle ${describeValue(d.handle)}. Use a handle returned by start() or listed by list().`, 404),
  MANAGER_CLOSED: failure(() =>
    `This ProcessManager has been shut down and starts nothing more. Create a new one with ProcessManager.create().`, 503),
  LIMIT_REACHED: failure<{ key?: Opt<string>; max: number; active: number }>((d) =>
    `Not starting${d.key === undefined ? '' : ` ${JSON.stringify(d.key)}`}: the concurrency limit of ${str(d.max)} is reached (${str(d.active)} running). Wait for one to finish (or start without --no-queue to wait in the queue), raise the limit with \`tend limit N\`, or stop a running process.`, 429),
  SIGNAL_DENIED: failure<{ signal: string; pid: number }>((d) =>
    `Not permitted to send ${str(d.signal)} to pid ${str(d.pid)} (EPERM). The process belongs to another user; run tend as that user.`, 403),
  STOP_FAILED: failure<{ handle: string; count: number; pids: string; reason: string }>((d) =>
    `Process tree ${str(d.handle)} still has ${str(d.count)} live member(s) (${str(d.pids)}) after repeated SIGKILL: ${str(d.reason)}.`),
  STATE_DIR_UNSAFE: failure<{ dir: string; reason: string; fix: string }>((d) =>
    `Refusing the state directory ${JSON.stringify(d.dir)}: ${str(d.reason)}. Its records decide which processes tend kills, so no one else may write there. ${str(d.fix)}`),
  PLUGIN_INVALID: failure<{ name: unknown; reason: string }>((d) =>
    `Plugin ${describeValue(d.name)} is invalid: ${str(d.reason)}. A plugin needs name (string), priority (number), isApplicable(spec) and enhance(spec).`),

  // Services
  SERVICE_UNKNOWN: failure<{ name: string; known?: Opt<string>; suggestion?: Opt<string> }>((d) =>
    `No service is named ${JSON.stringify(d.name)}.${d.suggestion ? ` Did you mean ${JSON.stringify(d.suggestion)}?` : ''} ${d.known ? `Known: ${str(d.known)}.` : 'None is defined yet.'} Define it with \`tend start ${str(d.name)} -- CMD [ARGS...]\` or in tend.yaml.`, 404),
  SERVICE_RUNNING: failure<{ name: string; differences: string }>((d) =>
    `Service ${JSON.stringify(d.name)} is running, and the new definition differs in: ${str(d.differences)}. To run the new one, stop it first (\`tend stop ${str(d.name)}\`); \`tend restart ${str(d.name)}\` restarts it as it is.`, 409),
  SERVICE_NOT_READY: failure<{ name: string; reason: string }>((d) =>
    `Service ${JSON.stringify(d.name)} did not get ready: ${str(d.reason)}. It was stopped; see \`tend logs ${str(d.name)}\`.`),
  SERVICE_START_FAILED: failure<{ name: string; reason: string }>((d) =>
    `Service ${JSON.stringify(d.name)} could not be started: ${str(d.reason)}.`),
  DEPENDENCY_FAILED: failure<{ name: string; dependency: string; state: string; reason?: Opt<string> }>((d) =>
    `Service ${JSON.stringify(d.name)} was not started: it depends on ${JSON.stringify(d.dependency)}, which is ${str(d.state)}${d.reason ? ` (${str(d.reason)})` : ''}. Fix and start ${JSON.stringify(d.dependency)} first.`, 424),
  PORT_IN_USE: failure<{ name: string; port: number; holders: string; fix: string; readiness?: Opt<boolean> }>((d) =>
    `Service ${JSON.stringify(d.name)} ${d.readiness === true ? 'checks readiness on' : 'declares'} port ${str(d.port)}, which is held by ${str(d.holders)}. ${str(d.fix)}`, 409),

  // The daemon and its protocol
  DAEMON_NOT_RUNNING: failure<{ stateDir: string; reason?: Opt<string> }>((d) =>
    `The tend daemon for ${JSON.stringify(d.stateDir)} is not running${d.reason ? ` (${str(d.reason)})` : ''}. Start it with \`tend daemon start\` (commands that need it start it themselves).`, 503),
  DAEMON_START_FAILED: failure<{ stateDir: string; reason: string; log?: Opt<string> }>((d) =>
    `Could not start the tend daemon for ${JSON.stringify(d.stateDir)}: ${str(d.reason)}.${d.log ? ` Its log is ${JSON.stringify(d.log)}.` : ''}`),
  DAEMON_UNREACHABLE: failure<{ stateDir: string; reason: string }>((d) =>
    `The tend daemon for ${JSON.stringify(d.stateDir)} did not answer: ${str(d.reason)}. If it is hung, \`tend daemon stop --force\` kills it (its services are stopped too).`, 503),
  PROTOCOL_ERROR: failure<{ problem: string }>((d) => `${str(d.problem)}`, 400),
  PROTOCOL_VERSION: failure<{ clientVersion: unknown; daemonVersion: number; problem?: Opt<string> }>((d) =>
    `${d.problem ?? `The client speaks protocol version ${JSON.stringify(d.clientVersion) ?? 'undefined'} but this daemon speaks version ${str(d.daemonVersion)}`}. The daemon is probably from an older or newer tend: restart it with \`tend daemon stop\` and run the command again.`, 400),
  UNKNOWN_METHOD: failure<{ method: string; known: string }>((d) =>
    `Unknown method ${JSON.stringify(d.method)}. This daemon knows: ${str(d.known) || '(none)'}.`, 404),
  PROTOCOL_TIMEOUT: failure<{ what: string; timeoutMs: number }>((d) =>
    `The daemon did not ${str(d.what)} within ${str(d.timeoutMs)} ms. It may be busy or hung: \`tend daemon stop --force\` restarts it.`, 504),
  PROTOCOL_CONNECTION_CLOSED: failure<{ reason: string }>((d) => `The connection to the daemon was closed before it answered: ${str(d.reason)}.`, 503),
  PROTOCOL_ADDRESS_IN_USE: failure<{ path: string; reason: string }>((d) =>
    `Cannot listen on ${str(d.path)}: ${str(d.reason)}.`),
  INTERNAL: failure<{ reason: string }>((d) => `Internal error: ${str(d.reason)}. This is a bug in tend; please report it with the command that caused it.`),
} as const;

export type ErrorCode = keyof typeof catalog;

/** The details a code's message is made from. */
export type DetailsOf<C extends ErrorCode> = (typeof catalog)[C] extends CodeSpec<infer D> ? D : never;

export const errorCodes = Object.keys(catalog) as ErrorCode[];

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(catalog, code);
}

/** The exit status and HTTP status of a code. */
export function codeSpec(code: ErrorCode): { readonly exit: 1 | 2; readonly http: number } {
  const spec = catalog[code];
  return { exit: spec.exit, http: spec.http };
}

/** An error as it crosses the daemon's socket and the HTTP API. */
export interface ErrorBody {
  readonly code: string;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

type DetailsArgs<C extends ErrorCode> = Record<string, never> extends DetailsOf<C>
  ? [details?: DetailsOf<C>, options?: { cause?: unknown }]
  : [details: DetailsOf<C>, options?: { cause?: unknown }];

/** Every error tend throws on purpose: a stable code, a message, the details that filled it. */
export class TendError<C extends ErrorCode = ErrorCode> extends Error {
  override readonly name = 'TendError';
  readonly code: C;
  readonly details: Readonly<DetailsOf<C>>;

  constructor(code: C, ...[details, options]: DetailsArgs<C>) {
    const filled = (details ?? {}) as DetailsOf<C>;
    super((catalog[code].message as (d: DetailsOf<C>) => string)(filled), options);
    this.code = code;
    this.details = filled;
  }

  /**
   * An error the daemon answered with: its message was rendered there and is
   * kept as sent. A code this tend does not know (a newer daemon) becomes
   * INTERNAL, naming the code.
   */
  static fromBody(body: ErrorBody): TendError {
    const error = isErrorCode(body.code)
      ? new TendError(body.code, (body.details ?? {}) as never)
      : new TendError('INTERNAL', { reason: `the daemon answered with the unknown code ${body.code}` });
    if (isErrorCode(body.code)) error.message = body.message;
    else error.message = `${body.code}: ${body.message}`;
    return error;
  }

  /** The CLI's exit status: 2 when the request was wrong, 1 when carrying it out failed. */
  get exitCode(): 1 | 2 {
    return catalog[this.code].exit;
  }

  /** Whether this error is the caller's fault (bad input): the CLI exits 2 for these. */
  get isUsageError(): boolean {
    return this.exitCode === 2;
  }

  get httpStatus(): number {
    return catalog[this.code].http;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }

  /** The wire form: code, message and (when any) the details. */
  toBody(): ErrorBody {
    const details = this.details as Readonly<Record<string, unknown>>;
    return Object.keys(details).length === 0 ? { code: this.code, message: this.message } : { code: this.code, message: this.message, details };
  }
}

export function isTendError<C extends ErrorCode = ErrorCode>(error: unknown, code?: C): error is TendError<C> {
  return error instanceof TendError && (code === undefined || error.code === code);
}

/** The errno code of a Node system error, if it is one. */
export function errnoOf(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
