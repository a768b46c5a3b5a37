/**
 * The one catalog of tend's error codes. Every code has a message template
 * that names the field, the value and the fix; docs/errors.md documents every
 * code (a test fails when one is missing there).
 */

type Details = Record<string, unknown>;

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

const catalog = {
  SPEC_INVALID: (d: Details) =>
    `Expected the process spec to be an object, got ${describeValue(d.value)}. Pass { command, args?, cwd?, env?, ... }.`,
  SPEC_UNKNOWN_FIELD: (d: Details) =>
    `Unknown spec field \`${str(d.field)}\`. Known fields: ${str(d.known)}.${d.suggestion ? ` Did you mean \`${str(d.suggestion)}\`?` : ''}`,
  SPEC_COMMAND_EMPTY: (d: Details) =>
    `Expected the \`command\` field to be a non-empty string, got ${describeValue(d.value)}. Name the program to run, e.g. "node" or "/usr/bin/env".`,
  SPEC_COMMAND_NOT_FOUND: (d: Details) =>
    `Command ${JSON.stringify(d.command)} was not found in the spec's PATH (${str(d.searched)}). Give an absolute path, or put its directory in env.PATH (or inheritEnv: ["PATH"]).`,
  SPEC_COMMAND_NOT_EXECUTABLE: (d: Details) =>
    `Command ${JSON.stringify(d.command)} resolves to ${JSON.stringify(d.path)}, which is ${str(d.reason)}. Point \`command\` at an executable file (chmod +x if it is a script).`,
  SPEC_ARGS_INVALID: (d: Details) =>
    `Expected \`args\` to be an array of strings without NUL bytes, got ${describeValue(d.value)}${d.index === undefined ? '' : ` (at index ${str(d.index)})`}. Pass each argument as its own string.`,
  SPEC_CWD_MISSING: (d: Details) =>
    `The \`cwd\` directory ${JSON.stringify(d.cwd)} does not exist. Create it or pass an existing directory.`,
  SPEC_CWD_NOT_DIRECTORY: (d: Details) =>
    `The \`cwd\` ${JSON.stringify(d.cwd)} is not a directory${d.reason ? ` (${str(d.reason)})` : ''}. Pass a directory the child may enter.`,
  SPEC_ENV_INVALID: (d: Details) =>
    `Expected \`env\` to be an object of string values, got ${describeValue(d.value)}. Pass e.g. { PATH: "/usr/bin" }.`,
  SPEC_ENV_NAME_INVALID: (d: Details) =>
    `Environment variable name ${JSON.stringify(d.name)} in \`${str(d.field)}\` is invalid: a name must be non-empty and contain neither "=" nor a NUL byte. Rename it.`,
  SPEC_ENV_VALUE_INVALID: (d: Details) =>
    `Expected \`env.${str(d.name)}\` to be a string without NUL bytes, got ${describeValue(d.value)}. Convert it with String(...) or drop it.`,
  SPEC_ENV_RESERVED: (d: Details) =>
    `\`env.${str(d.name)}\` is reserved: tend sets it on every child to find the whole tree. Remove it from the spec.`,
  SPEC_INHERIT_ENV_INVALID: (d: Details) =>
    `Expected \`inheritEnv\` to be true, false or an array of variable names, got ${describeValue(d.value)}.`,
  SPEC_LOG_FILE_INVALID: (d: Details) =>
    `The \`logFile\` ${describeValue(d.value)} cannot be used: ${str(d.reason)}. Pass a file path in an existing, writable directory.`,
  SPEC_STDIO_INVALID: (d: Details) =>
    `Expected \`stdio\` to be "ignore", "inherit" or "pipe", got ${describeValue(d.value)}.${d.reason ? ` ${str(d.reason)}` : ''}`,
  SPEC_NAME_INVALID: (d: Details) =>
    `Expected \`name\` to be 1-128 characters of letters, digits, ".", "_", "-" or "@", got ${describeValue(d.value)}. Rename it.`,
  SPEC_SIGNAL_UNKNOWN: (d: Details) =>
    `Unknown signal ${describeValue(d.value)} in \`${str(d.field)}\`. Use a name such as "SIGTERM", "SIGINT" or "SIGHUP", or its number.`,
  SPEC_TIMEOUT_INVALID: (d: Details) =>
    `Expected \`${str(d.field)}\` to be a non-negative integer number of milliseconds, got ${describeValue(d.value)}.`,
  SPEC_STRATEGY_UNKNOWN: (d: Details) =>
    `Unknown strategy ${describeValue(d.value)}. Use one of "auto", "cgroup", "pidns", "pgroup".`,
  SPEC_OPTION_INVALID: (d: Details) =>
    `Expected \`${str(d.field)}\` to be ${str(d.expected)}, got ${describeValue(d.value)}.`,
  CONFIG_INVALID: (d: Details) =>
    `${str(d.file)}:${str(d.line)}: ${d.field === undefined ? '' : `${str(d.field)}: `}${str(d.message)}. Fix: ${str(d.fix)}`,
  STRATEGY_UNAVAILABLE: (d: Details) =>
    `Strategy "${str(d.strategy)}" is not available on this machine: ${str(d.reason)}. Run \`tend detect\` to see what is, or use strategy "auto".`,
  START_FAILED: (d: Details) =>
    `Could not start ${JSON.stringify(d.command)}: ${str(d.reason)}.`,
  CONTAINMENT_FAILED: (d: Details) =>
    `Could not set up ${str(d.strategy)} containment: ${str(d.reason)}.${d.fix ? ` ${str(d.fix)}` : ''}`,
  HANDLE_UNKNOWN: (d: Details) =>
    `No managed process has the handle ${describeValue(d.handle)}. Use a handle returned by start() or listed by list().`,
  MANAGER_CLOSED: () =>
    `This ProcessManager has been shut down and starts nothing more. Create a new one with ProcessManager.create().`,
  LIMIT_REACHED: (d: Details) =>
    `Not starting${d.key === undefined ? '' : ` ${JSON.stringify(d.key)}`}: the concurrency limit of ${str(d.max)} is reached (${str(d.active)} running). Wait for one to finish (or start without --no-queue to wait in the queue), raise the limit with \`tend limit N\`, or stop a running process.`,
  SIGNAL_DENIED: (d: Details) =>
    `Not permitted to send ${str(d.signal)} to pid ${str(d.pid)} (EPERM). The process belongs to another user; run tend as that user.`,
  STOP_FAILED: (d: Details) =>
    `Process tree ${str(d.handle)} still has ${str(d.count)} live member(s) (${str(d.pids)}) after repeated SIGKILL: ${str(d.reason)}.`,
  STATE_DIR_UNSAFE: (d: Details) =>
    `Refusing the state directory ${JSON.stringify(d.dir)}: ${str(d.reason)}. Its records decide which processes tend kills, so no one else may write there. ${str(d.fix)}`,
  PLUGIN_INVALID: (d: Details) =>
    `Plugin ${describeValue(d.name)} is invalid: ${str(d.reason)}. A plugin needs name (string), priority (number), isApplicable(spec) and enhance(spec).`,
  SERVICE_UNKNOWN: (d: Details) =>
    `No service is named ${JSON.stringify(d.name)}.${d.suggestion ? ` Did you mean ${JSON.stringify(d.suggestion)}?` : ''} ${d.known ? `Known: ${str(d.known)}.` : 'None is defined yet.'} Define it with \`tend start ${str(d.name)} -- CMD [ARGS...]\` or in tend.yaml.`,
  SERVICE_RUNNING: (d: Details) =>
    `Service ${JSON.stringify(d.name)} is running, and the new definition differs in: ${str(d.differences)}. To run the new one, stop it first (\`tend stop ${str(d.name)}\`); \`tend restart ${str(d.name)}\` restarts it as it is.`,
  SERVICE_NOT_READY: (d: Details) =>
    `Service ${JSON.stringify(d.name)} did not get ready: ${str(d.reason)}. It was stopped; see \`tend logs ${str(d.name)}\`.`,
  SERVICE_START_FAILED: (d: Details) =>
    `Service ${JSON.stringify(d.name)} could not be started: ${str(d.reason)}.`,
  DEPENDENCY_FAILED: (d: Details) =>
    `Service ${JSON.stringify(d.name)} was not started: it depends on ${JSON.stringify(d.dependency)}, which is ${str(d.state)}${d.reason ? ` (${str(d.reason)})` : ''}. Fix and start ${JSON.stringify(d.dependency)} first.`,
  PORT_IN_USE: (d: Details) =>
    `Service ${JSON.stringify(d.name)} ${d.readiness === true ? 'checks readiness on' : 'declares'} port ${str(d.port)}, which is held by ${str(d.holders)}. ${str(d.fix)}`,
  DAEMON_NOT_RUNNING: (d: Details) =>
    `The tend daemon for ${JSON.stringify(d.stateDir)} is not running. Start it with \`tend daemon start\` (commands that need it start it themselves).`,
  DAEMON_START_FAILED: (d: Details) =>
    `Could not start the tend daemon for ${JSON.stringify(d.stateDir)}: ${str(d.reason)}.${d.log ? ` Its log is ${JSON.stringify(d.log)}.` : ''}`,
  DAEMON_UNREACHABLE: (d: Details) =>
    `The tend daemon for ${JSON.stringify(d.stateDir)} did not answer: ${str(d.reason)}. If it is hung, \`tend daemon stop --force\` kills it (its services are stopped too).`,
  CLI_USAGE: (d: Details) => `${str(d.message)}${d.hint ? `\n${str(d.hint)}` : ''}`,
} as const satisfies Record<string, (d: Details) => string>;

export type ErrorCode = keyof typeof catalog;

export const errorCodes = Object.keys(catalog) as ErrorCode[];

/** Codes that mean the request itself was wrong (CLI exit 2), not that carrying it out failed (exit 1). */
export function isUsageCode(code: string): boolean {
  return code.startsWith('SPEC_') || code === 'CLI_USAGE' || code === 'STRATEGY_UNAVAILABLE' || code === 'CONFIG_INVALID';
}

/** Every error tend throws on purpose: a stable code, a message, the details that filled it. */
export class TendError extends Error {
  override readonly name = 'TendError';
  readonly code: ErrorCode;
  readonly details: Readonly<Details>;

  constructor(code: ErrorCode, details: Details = {}, options?: { cause?: unknown }) {
    super(catalog[code](details), options);
    this.code = code;
    this.details = details;
  }

  /** Whether this error is the caller's fault (bad input): the CLI exits 2 for these. */
  get isUsageError(): boolean {
    return isUsageCode(this.code);
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isTendError(error: unknown, code?: ErrorCode): error is TendError {
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
