// The error catalog: every code is documented in docs/errors.md and every
// documented code exists; every template renders a complete message; the
// CLI's exit-code classification (isUsageError) is the documented one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TendError, codeSpec, describeValue, errnoOf, errorCodes, isTendError, type DetailsOf, type ErrorCode } from '../../src/core/errors.js';
import { repoRoot } from '../helpers/unit-local.js';

type Details = Record<string, unknown>;

/** Any code with any details: the loops below check every template, including with details of the wrong shape. */
function anyError(code: ErrorCode, details: unknown): TendError {
  return new TendError(code, details as never);
}

const docs = readFileSync(`${repoRoot}docs/errors.md`, 'utf8');
const headings = [...docs.matchAll(/^###\s+`([^`]+)`\s*$/gm)].map((m) => m[1] as string);

test('every error code has a `### `CODE`` heading in docs/errors.md', () => {
  assert.ok(errorCodes.length > 0, 'errorCodes is empty');
  const missing = errorCodes.filter((code) => !headings.includes(code));
  assert.deepEqual(missing, [], `codes without a heading in docs/errors.md: ${missing.join(', ')}`);
});

test('every heading in docs/errors.md is a real error code, documented once, with a description', () => {
  const unknown = headings.filter((h) => !(errorCodes as string[]).includes(h));
  assert.deepEqual(unknown, [], `headings in docs/errors.md that are not codes: ${unknown.join(', ')}`);
  const duplicated = headings.filter((h, i) => headings.indexOf(h) !== i);
  assert.deepEqual(duplicated, [], `codes documented twice: ${duplicated.join(', ')}`);
  for (const code of errorCodes) {
    const body = new RegExp(`^###\\s+\`${code}\`\\s*\\n([\\s\\S]*?)(?=^#{1,3}\\s|(?![\\s\\S]))`, 'm').exec(docs)?.[1] ?? '';
    assert.ok(body.trim().length >= 20, `the section for ${code} in docs/errors.md has no description`);
  }
});

test('error codes are unique UPPER_SNAKE_CASE names', () => {
  assert.equal(new Set(errorCodes).size, errorCodes.length);
  for (const code of errorCodes) assert.match(code, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
});

// Representative details for every code: a Record over ErrorCode, so a new
// code does not compile until it has an entry here. Every primitive detail
// value must show up in the message (a template that reads the wrong key
// leaves its value out).
const representative: { [C in ErrorCode]: DetailsOf<C> } = {
  SPEC_INVALID: { value: 'sh -c true' },
  SPEC_UNKNOWN_FIELD: { field: 'comand', known: 'command, args, cwd', suggestion: 'command' },
  SPEC_COMMAND_EMPTY: { value: '   ' },
  SPEC_COMMAND_NOT_FOUND: { command: 'servr', searched: 'PATH=/opt/empty' },
  SPEC_COMMAND_NOT_EXECUTABLE: { command: './run.sh', path: '/srv/app/run.sh', reason: 'not executable (no execute permission bits)' },
  SPEC_ARGS_INVALID: { value: 42, index: 3 },
  SPEC_CWD_MISSING: { cwd: '/srv/missing' },
  SPEC_CWD_NOT_DIRECTORY: { cwd: '/etc/hostname', reason: 'no permission to enter it' },
  SPEC_ENV_INVALID: { value: 'PATH=/usr/bin' },
  SPEC_ENV_NAME_INVALID: { name: 'A=B', field: 'env' },
  SPEC_ENV_VALUE_INVALID: { name: 'PORT', value: 3000 },
  SPEC_ENV_RESERVED: { name: 'TEND_ID' },
  SPEC_INHERIT_ENV_INVALID: { value: 'yes' },
  SPEC_LOG_FILE_INVALID: { value: '/nope/out.log', reason: 'its directory /nope does not exist' },
  SPEC_STDIO_INVALID: { value: 'loud', reason: 'With `logFile` set, output goes to the file: drop `stdio`.' },
  SPEC_NAME_INVALID: { value: 'has space' },
  SPEC_SIGNAL_UNKNOWN: { value: 'SIGFOO', field: 'stopSignal' },
  SPEC_TIMEOUT_INVALID: { field: 'stopTimeoutMs', value: -1 },
  SPEC_STRATEGY_UNKNOWN: { value: 'docker' },
  SPEC_OPTION_INVALID: { field: 'parentDeathSignal', expected: 'a boolean', value: 'yes' },
  CONFIG_INVALID: { file: 'tend.yaml', line: 12, field: 'services.web.restart', message: 'expected one of never, on-failure, always, got "sometimes"', fix: 'Did you mean `restart: always`?' },
  STRATEGY_UNAVAILABLE: { strategy: 'pidns', reason: 'tend-nsinit is missing' },
  START_FAILED: { command: 'server', reason: 'EAGAIN resource temporarily unavailable' },
  CONTAINMENT_FAILED: { strategy: 'cgroup', reason: 'cannot create /sys/fs/cgroup/tend/abc', fix: 'Use strategy "pgroup".' },
  HANDLE_UNKNOWN: { handle: 'deadbeef' },
  MANAGER_CLOSED: {},
  LIMIT_REACHED: { key: 'build-7', active: 6, max: 5 },
  SIGNAL_DENIED: { signal: 'SIGTERM', pid: 4242 },
  STOP_FAILED: { handle: 'cafe01', count: 2, pids: '101, 102', reason: 'they are in state D' },
  STATE_DIR_UNSAFE: { dir: '/home/ann/.local/state/tend', reason: 'it is writable by others (mode 777)', fix: 'Run `chmod 700 /home/ann/.local/state/tend`.' },
  PLUGIN_INVALID: { name: 'nvm', reason: '`priority` must be a finite number' },
  SERVICE_UNKNOWN: { name: 'wbe', suggestion: 'web', known: 'web, worker' },
  SERVICE_RUNNING: { name: 'web', differences: 'args; env PORT' },
  SERVICE_NOT_READY: { name: 'web', reason: 'port 3000 did not accept within 30000 ms' },
  SERVICE_START_FAILED: { name: 'web', reason: 'it was stopped while starting' },
  DEPENDENCY_FAILED: { name: 'web', dependency: 'db', state: 'failed', reason: 'exit code 3' },
  PORT_IN_USE: { name: 'web', port: 3000, holders: 'pid 4242 (python3 -m http.server)', fix: 'Add --force.' },
  DAEMON_NOT_RUNNING: { stateDir: '/tmp/state-x' },
  DAEMON_START_FAILED: { stateDir: '/tmp/state-x', reason: 'it exited (code 1) before it listened', log: '/tmp/state-x/daemon.log' },
  DAEMON_UNREACHABLE: { stateDir: '/tmp/state-x', reason: 'no answer within 30000 ms' },
  CLI_USAGE: { message: 'tend exec: no command given', hint: 'Usage: tend exec [options] -- CMD [ARGS...]' },
  PROTOCOL_ERROR: { problem: 'Expected the request `id` to be a non-negative integer.' },
  PROTOCOL_VERSION: { clientVersion: 2, daemonVersion: 1 },
  UNKNOWN_METHOD: { method: 'frobnicate', known: 'ping, ps' },
  PROTOCOL_TIMEOUT: { what: 'answer ps', timeoutMs: 30000 },
  PROTOCOL_CONNECTION_CLOSED: { reason: 'the daemon is shutting down' },
  PROTOCOL_ADDRESS_IN_USE: { path: '/tmp/state-x/daemon.sock', reason: 'another tend daemon is already listening there' },
  INTERNAL: { reason: 'the result could not be encoded as JSON' },
};

// The same codes with their optional details left out: optional parts must
// disappear, not render as "undefined".
const minimal: Partial<Record<ErrorCode, Details>> = {
  SPEC_UNKNOWN_FIELD: { field: 'xyzzy', known: 'command, args' },
  SPEC_ARGS_INVALID: { value: 'a b' },
  SPEC_CWD_NOT_DIRECTORY: { cwd: '/etc/hostname' },
  SPEC_STDIO_INVALID: { value: 'loud' },
  CONTAINMENT_FAILED: { strategy: 'cgroup', reason: 'no cgroup' },
  LIMIT_REACHED: { active: 3, max: 3 },
  CLI_USAGE: { message: 'tend: unknown command "x"' },
};

function primitiveValues(details: Details): string[] {
  return Object.values(details)
    .filter((v) => typeof v === 'string' || typeof v === 'number')
    .map(String);
}

test('every template renders a complete message naming the details it was given', () => {
  for (const code of errorCodes) {
    const details = representative[code];
    const error = anyError(code, details);
    assert.equal(error.code, code);
    assert.ok(error.message.trim().length > 10, `${code}: empty message`);
    assert.doesNotMatch(error.message, /undefined|\[object Object\]|NaN/, `${code}: ${error.message}`);
    for (const value of primitiveValues(details)) {
      assert.ok(error.message.includes(value), `${code}: the message does not show ${JSON.stringify(value)}: ${error.message}`);
    }
  }
});

test('templates leave out optional details cleanly', () => {
  for (const [code, details] of Object.entries(minimal) as [ErrorCode, Details][]) {
    const message = anyError(code, details).message;
    assert.doesNotMatch(message, /undefined|null|\(\)|``/, `${code}: ${message}`);
    for (const value of primitiveValues(details)) assert.ok(message.includes(value), `${code}: ${message}`);
  }
  assert.doesNotMatch(anyError('SPEC_UNKNOWN_FIELD', minimal.SPEC_UNKNOWN_FIELD).message, /Did you mean/);
  assert.match(new TendError('SPEC_UNKNOWN_FIELD', representative.SPEC_UNKNOWN_FIELD).message, /Did you mean `command`\?/);
  assert.doesNotMatch(anyError('SPEC_ARGS_INVALID', minimal.SPEC_ARGS_INVALID).message, /index/);
  assert.match(new TendError('SPEC_ARGS_INVALID', representative.SPEC_ARGS_INVALID).message, /index 3/);
});

test('no template crashes on details of the wrong shape or none at all', () => {
  const odd: Details = { value: { nested: [1, 2] }, field: null, name: Symbol('s'), cwd: undefined, pid: 1n };
  for (const code of errorCodes) {
    for (const details of [{}, odd]) {
      const error = anyError(code, details);
      assert.equal(typeof error.message, 'string', code);
      assert.ok(error.message.length > 0, code);
    }
  }
  const circular: Details = {};
  circular.self = circular;
  assert.doesNotThrow(() => new TendError('SPEC_INVALID', { value: circular }));
});

// Exit code 2 (the caller's fault) or 1 (an operation failed), per docs/errors.md.
const usage: Record<ErrorCode, boolean> = {
  SPEC_INVALID: true,
  SPEC_UNKNOWN_FIELD: true,
  SPEC_COMMAND_EMPTY: true,
  SPEC_COMMAND_NOT_FOUND: true,
  SPEC_COMMAND_NOT_EXECUTABLE: true,
  SPEC_ARGS_INVALID: true,
  SPEC_CWD_MISSING: true,
  SPEC_CWD_NOT_DIRECTORY: true,
  SPEC_ENV_INVALID: true,
  SPEC_ENV_NAME_INVALID: true,
  SPEC_ENV_VALUE_INVALID: true,
  SPEC_ENV_RESERVED: true,
  SPEC_INHERIT_ENV_INVALID: true,
  SPEC_LOG_FILE_INVALID: true,
  SPEC_STDIO_INVALID: true,
  SPEC_NAME_INVALID: true,
  SPEC_SIGNAL_UNKNOWN: true,
  SPEC_TIMEOUT_INVALID: true,
  SPEC_STRATEGY_UNKNOWN: true,
  SPEC_OPTION_INVALID: true,
  STRATEGY_UNAVAILABLE: true,
  CONFIG_INVALID: true,
  SERVICE_UNKNOWN: false,
  SERVICE_RUNNING: false,
  SERVICE_NOT_READY: false,
  SERVICE_START_FAILED: false,
  DEPENDENCY_FAILED: false,
  PORT_IN_USE: false,
  DAEMON_NOT_RUNNING: false,
  DAEMON_START_FAILED: false,
  DAEMON_UNREACHABLE: false,
  CLI_USAGE: true,
  START_FAILED: false,
  CONTAINMENT_FAILED: false,
  HANDLE_UNKNOWN: false,
  MANAGER_CLOSED: false,
  LIMIT_REACHED: false,
  SIGNAL_DENIED: false,
  STOP_FAILED: false,
  STATE_DIR_UNSAFE: false,
  PLUGIN_INVALID: false,
  PROTOCOL_ERROR: false,
  PROTOCOL_VERSION: false,
  UNKNOWN_METHOD: false,
  PROTOCOL_TIMEOUT: false,
  PROTOCOL_CONNECTION_CLOSED: false,
  PROTOCOL_ADDRESS_IN_USE: false,
  INTERNAL: false,
};

test('isUsageError: SPEC_*, CONFIG_INVALID, CLI_USAGE and STRATEGY_UNAVAILABLE are usage errors, the rest are failures', () => {
  for (const code of errorCodes) {
    assert.equal(anyError(code, representative[code]).isUsageError, usage[code], code);
    assert.equal(anyError(code, representative[code]).exitCode, usage[code] ? 2 : 1, code);
  }
  assert.deepEqual(Object.keys(usage).sort(), [...errorCodes].sort());
});

test('TendError carries code, details, name, cause and a JSON form', () => {
  const cause = Object.assign(new Error('kill EPERM'), { code: 'EPERM' });
  const error = new TendError('SIGNAL_DENIED', { signal: 'SIGTERM', pid: 1 }, { cause });
  assert.ok(error instanceof Error);
  assert.equal(error.name, 'TendError');
  assert.equal(error.cause, cause);
  assert.deepEqual(error.details, { signal: 'SIGTERM', pid: 1 });
  assert.deepEqual(JSON.parse(JSON.stringify(error)), { code: 'SIGNAL_DENIED', message: error.message });
  assert.match(String(error), /^TendError: Not permitted/);
  assert.equal(isTendError(error), true);
  assert.equal(isTendError(error, 'SIGNAL_DENIED'), true);
  assert.equal(isTendError(error, 'STOP_FAILED'), false);
  assert.equal(isTendError(new Error('x')), false);
  assert.equal(isTendError({ code: 'SIGNAL_DENIED', message: 'x' }), false);
  assert.equal(errnoOf(cause), 'EPERM');
  assert.equal(errnoOf(new Error('x')), undefined);
  assert.equal(errnoOf(null), undefined);
  assert.equal(errnoOf({ code: 13 }), undefined);
});

test('describeValue says what a value is', () => {
  assert.equal(describeValue('-1'), '"-1" (string)');
  assert.equal(describeValue(-1), '-1 (number)');
  assert.equal(describeValue(false), 'false (boolean)');
  assert.equal(describeValue(null), 'null');
  assert.equal(describeValue(undefined), 'undefined');
  assert.equal(describeValue(['a', 1]), '["a",1] (array)');
  assert.equal(describeValue({ a: 1 }), '{"a":1} (object)');
  assert.equal(describeValue('a\0b'), '"a\\u0000b" (string)');
  assert.equal(describeValue(() => 1), 'a function');
  assert.match(describeValue(Symbol('x')), /Symbol\(x\)/);
});

test('docs/errors.md gives each code its exit status and HTTP status, as the catalog has them', () => {
  for (const code of errorCodes) {
    const body = new RegExp(`^###\\s+\`${code}\`\\s*\\n([\\s\\S]*?)(?=^#{1,3}\\s|(?![\\s\\S]))`, 'm').exec(docs)?.[1] ?? '';
    const stated = /^Exit (\d), HTTP (\d{3})\.$/m.exec(body);
    assert.ok(stated, `the section for ${code} does not say "Exit N, HTTP NNN."`);
    const spec = codeSpec(code);
    assert.deepEqual([Number(stated[1]), Number(stated[2])], [spec.exit, spec.http], code);
  }
});

test('an error body from the daemon becomes a TendError with the message as sent', () => {
  const known = TendError.fromBody({ code: 'SERVICE_UNKNOWN', message: 'No service is named "x" (as the daemon put it).', details: { name: 'x' } });
  assert.ok(isTendError(known, 'SERVICE_UNKNOWN'));
  assert.equal(known.message, 'No service is named "x" (as the daemon put it).');
  assert.deepEqual(known.details, { name: 'x' });
  assert.equal(known.exitCode, 1);
  const unknown = TendError.fromBody({ code: 'FROM_THE_FUTURE', message: 'something new' });
  assert.equal(unknown.code, 'INTERNAL');
  assert.match(unknown.message, /FROM_THE_FUTURE: something new/);
  const usageError = new TendError('CONFIG_INVALID', { file: 'tend.yaml', line: 3, message: 'bad', fix: 'fix it' });
  assert.deepEqual(TendError.fromBody(usageError.toBody()).toBody(), usageError.toBody());
  assert.equal(TendError.fromBody(usageError.toBody()).exitCode, 2);
});
