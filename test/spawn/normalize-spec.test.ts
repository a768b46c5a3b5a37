// Spec validation and normalization. A table of bad specs, each given to a
// real manager: the exact error code, a message that names the field and the
// value, and proof that nothing started (no process, no marker file written by
// the command, no cgroup created). Then what valid specs normalize to.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isTendError, type ErrorCode } from '../../src/core/errors.js';
import { isFinal, type NormalizedSpec, type ProcessSpec } from '../../src/core/types.js';
import type { ProcessHandle } from '../../src/manager/process-handle.js';
import { ProcessManager } from '../../src/manager/process-manager.js';
import { locateCgroup2 } from '../../src/platform/cgroup.js';
import { DEFAULT_STOP_TIMEOUT_MS, normalizeSpec, type SpecContext } from '../../src/spawn/normalize-spec.js';
import { parseEnviron, readProcStat, scanProcesses, type ProcInfo } from '../helpers/proc-scan.js';
import { makeTempDir, removeDir } from '../helpers/unit-local.js';
import { waitFor, withDeadline } from '../helpers/wait.js';

const SLEEP = realpathSync(['/usr/bin/sleep', '/bin/sleep'].find((p) => existsSync(p)) ?? '/bin/sleep');
const DEFAULT_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

const tmp = makeTempDir();
const markers = join(tmp, 'markers');
const emptyDir = join(tmp, 'empty');
const binDir = join(tmp, 'bin');
const otherBinDir = join(tmp, 'other-bin');
const noexecDir = join(tmp, 'noexec');
const noexecFile = join(noexecDir, 'tool');
const plainFile = join(tmp, 'plain.txt');
const logDir = join(tmp, 'logs');

// A cgroup parent of our own, so that any cgroup a start created is visible
// here whatever other tests do under the shared one.
const location = locateCgroup2();
const cgroupParent = location ? join(location.mount, location.own, 'tend', `spec-test-${randomBytes(4).toString('hex')}`) : undefined;
let manager: ProcessManager;
let useCgroup = false;

before(async () => {
  for (const dir of [markers, emptyDir, binDir, otherBinDir, noexecDir, logDir]) mkdirSync(dir);
  writeFileSync(join(binDir, 'tool'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  writeFileSync(join(otherBinDir, 'tool'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  writeFileSync(noexecFile, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
  chmodSync(noexecFile, 0o644);
  writeFileSync(plainFile, 'not a directory\n');
  manager = await ProcessManager.create({ handleSignals: false, cgroupParent, env: { ...process.env, PATH: '/usr/local/bin:/usr/bin:/bin' } });
  useCgroup = cgroupParent !== undefined && manager.capabilities().strategies.cgroup.available;
});

after(async () => {
  await manager?.shutdown({ signal: 'SIGKILL' }).catch(() => undefined);
  for (const p of ours()) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (cgroupParent && existsSync(cgroupParent)) {
    for (const entry of readdirSync(cgroupParent, { withFileTypes: true })) if (entry.isDirectory()) tryRmdir(join(cgroupParent, entry.name));
    tryRmdir(cgroupParent);
  }
  removeDir(tmp);
});

function tryRmdir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    /* still populated: the leak check reports its processes */
  }
}

/** Live processes this file may have started: children carrying TEND_ID, or anything whose command line names our temp dir. */
function ours(): ProcInfo[] {
  return scanProcesses({ live: true }).filter((p) => (p.ppid === process.pid && p.env.has('TEND_ID')) || p.cmdline.includes(tmp));
}

function cgroupsCreated(): string[] {
  if (!cgroupParent || !existsSync(cgroupParent)) return [];
  return readdirSync(cgroupParent, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
}

let caseNumber = 0;

/** A valid spec whose command, if it ever ran, writes a marker file and stays alive. */
function baseSpec(): { spec: Record<string, unknown>; marker: string } {
  const marker = join(markers, `case-${++caseNumber}`);
  return {
    marker,
    spec: {
      command: '/bin/sh',
      args: ['-c', `touch '${marker}'; exec ${SLEEP} 1000`],
      strategy: useCgroup ? 'cgroup' : 'auto',
    },
  };
}

/** ['-c', <hole>, 'true']: a hole is no string, and would reach the child as the text "undefined". */
function sparseArgs(): unknown[] {
  const args: unknown[] = ['-c'];
  args[2] = 'true';
  return args;
}

/** Cleans up after a bug: a spec that should have been refused was started. */
async function removeWronglyStarted(handle: ProcessHandle, marker: string): Promise<void> {
  // Let the command get going first: a stop issued before the child has joined its containment may not see it.
  await waitFor(() => existsSync(marker) || isFinal(handle.status()), { what: 'the wrongly started command to run', timeoutMs: 5000 }).catch(() => undefined);
  await withDeadline(handle.stop({ signal: 'SIGKILL' }), { what: 'the stop of a wrongly started tree', timeoutMs: 5000 }).catch(() => {
    for (const p of ours()) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  });
}

interface BadCase {
  readonly name: string;
  /** The change to the base spec (a field set to undefined is removed), or the whole input. */
  readonly spec: Record<string, unknown> | { readonly whole: unknown };
  readonly code: ErrorCode;
  /** Texts the message must contain: the field and the value. */
  readonly mentions: readonly string[];
  readonly notMentions?: readonly string[];
}

const badCases: readonly BadCase[] = [
  // not an object
  { name: 'null', spec: { whole: null }, code: 'SPEC_INVALID', mentions: ['null'] },
  { name: 'a string', spec: { whole: 'sh -c true' }, code: 'SPEC_INVALID', mentions: ['"sh -c true"'] },
  { name: 'an array', spec: { whole: ['/bin/sh'] }, code: 'SPEC_INVALID', mentions: ['["/bin/sh"]', 'array'] },
  { name: 'a number', spec: { whole: 42 }, code: 'SPEC_INVALID', mentions: ['42'] },
  { name: 'undefined', spec: { whole: undefined }, code: 'SPEC_INVALID', mentions: ['undefined'] },
  // unknown fields
  { name: 'typo comand', spec: { comand: '/bin/sh' }, code: 'SPEC_UNKNOWN_FIELD', mentions: ['`comand`', 'Did you mean `command`?'] },
  { name: 'typo stopTimeout', spec: { stopTimeout: 5 }, code: 'SPEC_UNKNOWN_FIELD', mentions: ['`stopTimeout`', 'Did you mean `stopTimeoutMs`?'] },
  { name: 'unknown xyzzy', spec: { xyzzy: 1 }, code: 'SPEC_UNKNOWN_FIELD', mentions: ['`xyzzy`', 'command'], notMentions: ['Did you mean'] },
  // command
  { name: 'command missing', spec: { command: undefined }, code: 'SPEC_COMMAND_EMPTY', mentions: ['`command`', 'undefined'] },
  { name: 'command empty', spec: { command: '' }, code: 'SPEC_COMMAND_EMPTY', mentions: ['`command`', '""'] },
  { name: 'command whitespace', spec: { command: '  \t ' }, code: 'SPEC_COMMAND_EMPTY', mentions: ['`command`', '"  \\t "'] },
  { name: 'command a number', spec: { command: 42 }, code: 'SPEC_COMMAND_EMPTY', mentions: ['`command`', '42 (number)'] },
  { name: 'command with NUL', spec: { command: '/bin/sh\0x' }, code: 'SPEC_COMMAND_EMPTY', mentions: ['`command`', '"/bin/sh\\u0000x"'] },
  {
    name: 'command not in the spec PATH (the manager PATH has it)',
    spec: { command: 'sh', env: { PATH: emptyDir } },
    code: 'SPEC_COMMAND_NOT_FOUND',
    mentions: ['"sh"', emptyDir],
  },
  { name: 'absolute command missing', spec: { command: join(tmp, 'nope') }, code: 'SPEC_COMMAND_NOT_FOUND', mentions: [join(tmp, 'nope')] },
  {
    name: 'relative command resolved against cwd',
    spec: { command: './bin/tool', cwd: emptyDir },
    code: 'SPEC_COMMAND_NOT_FOUND',
    mentions: ['"./bin/tool"', join(emptyDir, 'bin/tool')],
  },
  {
    name: 'bare name is not looked up in cwd',
    spec: { command: 'tool', cwd: binDir, env: { PATH: emptyDir } },
    code: 'SPEC_COMMAND_NOT_FOUND',
    mentions: ['"tool"', emptyDir],
  },
  { name: 'command without execute bits', spec: { command: noexecFile }, code: 'SPEC_COMMAND_NOT_EXECUTABLE', mentions: [noexecFile, 'execut'] },
  { name: 'command is a directory', spec: { command: binDir }, code: 'SPEC_COMMAND_NOT_EXECUTABLE', mentions: [binDir, 'directory'] },
  {
    name: 'command found in PATH but not executable',
    spec: { command: 'tool', env: { PATH: noexecDir } },
    code: 'SPEC_COMMAND_NOT_EXECUTABLE',
    mentions: ['"tool"', noexecFile],
  },
  // args
  { name: 'args a string', spec: { args: 'a b' }, code: 'SPEC_ARGS_INVALID', mentions: ['`args`', '"a b"'] },
  { name: 'args null', spec: { args: null }, code: 'SPEC_ARGS_INVALID', mentions: ['`args`', 'null'] },
  { name: 'args with a number', spec: { args: ['-c', 42] }, code: 'SPEC_ARGS_INVALID', mentions: ['`args`', '42 (number)', 'index 1'] },
  { name: 'args with a hole (sparse array)', spec: { args: sparseArgs() }, code: 'SPEC_ARGS_INVALID', mentions: ['`args`', 'index 1'] },
  { name: 'args with NUL', spec: { args: ['-c', 'true\0x'] }, code: 'SPEC_ARGS_INVALID', mentions: ['`args`', '"true\\u0000x"', 'index 1'] },
  // cwd
  { name: 'cwd missing', spec: { cwd: join(tmp, 'missing') }, code: 'SPEC_CWD_MISSING', mentions: ['`cwd`', join(tmp, 'missing')] },
  { name: 'cwd is a file', spec: { cwd: plainFile }, code: 'SPEC_CWD_NOT_DIRECTORY', mentions: ['`cwd`', plainFile] },
  { name: 'cwd empty', spec: { cwd: '' }, code: 'SPEC_CWD_NOT_DIRECTORY', mentions: ['`cwd`', '""'] },
  { name: 'cwd a number', spec: { cwd: 7 }, code: 'SPEC_CWD_NOT_DIRECTORY', mentions: ['`cwd`', '7'] },
  // env
  { name: 'env a string', spec: { env: 'PATH=/bin' }, code: 'SPEC_ENV_INVALID', mentions: ['`env`', '"PATH=/bin"'] },
  { name: 'env an array', spec: { env: ['A=1'] }, code: 'SPEC_ENV_INVALID', mentions: ['`env`', '["A=1"]'] },
  { name: 'env null', spec: { env: null }, code: 'SPEC_ENV_INVALID', mentions: ['`env`', 'null'] },
  { name: 'env a Map', spec: { env: new Map([['A', '1']]) }, code: 'SPEC_ENV_INVALID', mentions: ['`env`'] },
  { name: 'env name with =', spec: { env: { 'A=B': '1' } }, code: 'SPEC_ENV_NAME_INVALID', mentions: ['`env`', '"A=B"'] },
  { name: 'env name with NUL', spec: { env: { 'A\0B': '1' } }, code: 'SPEC_ENV_NAME_INVALID', mentions: ['`env`', '"A\\u0000B"'] },
  { name: 'env name empty', spec: { env: { '': '1' } }, code: 'SPEC_ENV_NAME_INVALID', mentions: ['`env`', '""'] },
  { name: 'env value a number', spec: { env: { PORT: 3000 } }, code: 'SPEC_ENV_VALUE_INVALID', mentions: ['`env.PORT`', '3000 (number)'] },
  { name: 'env value with NUL', spec: { env: { X: 'a\0b' } }, code: 'SPEC_ENV_VALUE_INVALID', mentions: ['`env.X`', '"a\\u0000b"'] },
  { name: 'env sets TEND_ID', spec: { env: { TEND_ID: 'mine' } }, code: 'SPEC_ENV_RESERVED', mentions: ['`env.TEND_ID`'] },
  // inheritEnv
  { name: 'inheritEnv a string', spec: { inheritEnv: 'yes' }, code: 'SPEC_INHERIT_ENV_INVALID', mentions: ['`inheritEnv`', '"yes"'] },
  { name: 'inheritEnv a number', spec: { inheritEnv: 1 }, code: 'SPEC_INHERIT_ENV_INVALID', mentions: ['`inheritEnv`', '1 (number)'] },
  { name: 'inheritEnv with a number', spec: { inheritEnv: ['HOME', 1] }, code: 'SPEC_INHERIT_ENV_INVALID', mentions: ['`inheritEnv`', '["HOME",1]'] },
  { name: 'inheritEnv with a bad name', spec: { inheritEnv: ['A=B'] }, code: 'SPEC_ENV_NAME_INVALID', mentions: ['`inheritEnv`', '"A=B"'] },
  // logFile
  {
    name: 'logFile directory missing',
    spec: { logFile: join(tmp, 'no-such-dir', 'out.log') },
    code: 'SPEC_LOG_FILE_INVALID',
    mentions: ['`logFile`', join(tmp, 'no-such-dir', 'out.log'), 'does not exist'],
  },
  { name: 'logFile is a directory', spec: { logFile: logDir }, code: 'SPEC_LOG_FILE_INVALID', mentions: ['`logFile`', logDir, 'directory'] },
  {
    name: 'logFile below a file',
    spec: { logFile: join(plainFile, 'out.log') },
    code: 'SPEC_LOG_FILE_INVALID',
    mentions: ['`logFile`', join(plainFile, 'out.log')],
  },
  { name: 'logFile empty', spec: { logFile: '' }, code: 'SPEC_LOG_FILE_INVALID', mentions: ['`logFile`', '""'] },
  // stdio
  { name: 'stdio unknown', spec: { stdio: 'loud' }, code: 'SPEC_STDIO_INVALID', mentions: ['`stdio`', '"loud"'] },
  {
    name: 'stdio together with logFile',
    spec: { stdio: 'pipe', logFile: join(logDir, 'never-created.log') },
    code: 'SPEC_STDIO_INVALID',
    mentions: ['`stdio`', '"pipe"', '`logFile`'],
  },
  // name
  { name: 'name with a space', spec: { name: 'has space' }, code: 'SPEC_NAME_INVALID', mentions: ['`name`', '"has space"'] },
  { name: 'name empty', spec: { name: '' }, code: 'SPEC_NAME_INVALID', mentions: ['`name`', '""'] },
  { name: 'name too long', spec: { name: 'x'.repeat(129) }, code: 'SPEC_NAME_INVALID', mentions: ['`name`', 'x'.repeat(129)] },
  { name: 'name a number', spec: { name: 5 }, code: 'SPEC_NAME_INVALID', mentions: ['`name`', '5 (number)'] },
  // stopSignal
  { name: 'signal SIGFOO', spec: { stopSignal: 'SIGFOO' }, code: 'SPEC_SIGNAL_UNKNOWN', mentions: ['`stopSignal`', '"SIGFOO"'] },
  { name: 'signal 0', spec: { stopSignal: 0 }, code: 'SPEC_SIGNAL_UNKNOWN', mentions: ['`stopSignal`', '0 (number)'] },
  { name: 'signal 999', spec: { stopSignal: 999 }, code: 'SPEC_SIGNAL_UNKNOWN', mentions: ['`stopSignal`', '999 (number)'] },
  { name: 'signal -15', spec: { stopSignal: -15 }, code: 'SPEC_SIGNAL_UNKNOWN', mentions: ['`stopSignal`', '-15 (number)'] },
  { name: 'signal 15.5', spec: { stopSignal: 15.5 }, code: 'SPEC_SIGNAL_UNKNOWN', mentions: ['`stopSignal`', '15.5 (number)'] },
  { name: 'signal empty', spec: { stopSignal: '' }, code: 'SPEC_SIGNAL_UNKNOWN', mentions: ['`stopSignal`', '""'] },
  { name: 'signal "0"', spec: { stopSignal: '0' }, code: 'SPEC_SIGNAL_UNKNOWN', mentions: ['`stopSignal`', '"0"'] },
  // stopTimeoutMs
  { name: 'timeout negative', spec: { stopTimeoutMs: -1 }, code: 'SPEC_TIMEOUT_INVALID', mentions: ['`stopTimeoutMs`', '-1 (number)'] },
  { name: 'timeout fractional', spec: { stopTimeoutMs: 1.5 }, code: 'SPEC_TIMEOUT_INVALID', mentions: ['`stopTimeoutMs`', '1.5 (number)'] },
  { name: 'timeout 2^31', spec: { stopTimeoutMs: 2 ** 31 }, code: 'SPEC_TIMEOUT_INVALID', mentions: ['`stopTimeoutMs`', '2147483648 (number)'] },
  { name: 'timeout Infinity', spec: { stopTimeoutMs: Infinity }, code: 'SPEC_TIMEOUT_INVALID', mentions: ['`stopTimeoutMs`', 'Infinity'] },
  { name: 'timeout NaN', spec: { stopTimeoutMs: NaN }, code: 'SPEC_TIMEOUT_INVALID', mentions: ['`stopTimeoutMs`', 'NaN'] },
  { name: 'timeout a string', spec: { stopTimeoutMs: '5s' }, code: 'SPEC_TIMEOUT_INVALID', mentions: ['`stopTimeoutMs`', '"5s"'] },
  // strategy, parentDeathSignal
  { name: 'strategy unknown', spec: { strategy: 'docker' }, code: 'SPEC_STRATEGY_UNKNOWN', mentions: ['strategy', '"docker"'] },
  { name: 'strategy a number', spec: { strategy: 1 }, code: 'SPEC_STRATEGY_UNKNOWN', mentions: ['strategy', '1 (number)'] },
  { name: 'parentDeathSignal a string', spec: { parentDeathSignal: 'yes' }, code: 'SPEC_OPTION_INVALID', mentions: ['`parentDeathSignal`', '"yes"'] },
  { name: 'parentDeathSignal a number', spec: { parentDeathSignal: 1 }, code: 'SPEC_OPTION_INVALID', mentions: ['`parentDeathSignal`', '1 (number)'] },
];

function buildInput(bad: BadCase, base: Record<string, unknown>): unknown {
  if ('whole' in bad.spec) return bad.spec.whole;
  const spec: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(bad.spec)) {
    if (value === undefined) delete spec[key];
    else spec[key] = value;
  }
  return spec;
}

test('control: the checks below see a start (process, marker file, cgroup)', async () => {
  const { spec, marker } = baseSpec();
  const handle = await manager.start(spec as unknown as ProcessSpec);
  await waitFor(() => existsSync(marker), { what: 'the command to write its marker file' });
  const seen = await waitFor(() => ours().find((p) => p.env.get('TEND_ID') === handle.id), { what: 'the started process in /proc' });
  assert.ok(seen.cmdline.includes(SLEEP), seen.cmdline);
  if (useCgroup) assert.deepEqual(cgroupsCreated(), [handle.id]);
  assert.equal(manager.list().length, 1);
  await handle.stop({ signal: 'SIGKILL' });
  assert.deepEqual(ours(), []);
  assert.deepEqual(cgroupsCreated(), []);
  assert.equal(manager.list().length, 0);
});

test('bad specs: exact code, a message naming field and value, and nothing started', async (t) => {
  if (!useCgroup) t.diagnostic(`cgroup strategy unavailable (${manager.capabilities().strategies.cgroup.reason}): no cgroup check`);
  const badMarkers: string[] = [];
  for (const bad of badCases) {
    await t.test(bad.name, async () => {
      const { spec: base, marker } = baseSpec();
      badMarkers.push(marker);
      let started: ProcessHandle | undefined;
      const error = await manager.start(buildInput(bad, base) as ProcessSpec).then(
        (handle) => {
          started = handle;
          return new Error(`it started ${handle.id}`);
        },
        (e: unknown) => e,
      );
      try {
        // Nothing started: no process, no marker, no cgroup, no handle.
        assert.deepEqual(
          ours().map((p) => `${p.pid} ${p.cmdline}`),
          [],
          'a process was started',
        );
        assert.equal(existsSync(marker), false, 'the command ran');
        assert.deepEqual(cgroupsCreated(), [], 'a cgroup was created');
        assert.equal(manager.list().length, 0, 'a handle was registered');
        assert.ok(isTendError(error), `expected ${bad.code}, got ${String(error)}`);
        assert.equal(error.code, bad.code, error.message);
        for (const text of bad.mentions) assert.ok(error.message.includes(text), `the message does not mention ${JSON.stringify(text)}: ${error.message}`);
        for (const text of bad.notMentions ?? []) assert.ok(!error.message.includes(text), `the message mentions ${JSON.stringify(text)}: ${error.message}`);
        assert.equal(error.isUsageError, true);
      } finally {
        if (started) await removeWronglyStarted(started, marker);
      }
    });
  }
  assert.equal(existsSync(join(logDir, 'never-created.log')), false, 'the log file of an invalid spec was created');
  assert.deepEqual(
    badMarkers.filter((m) => existsSync(m)),
    [],
    'a command of an invalid spec ran after all',
  );
});

// ------------------------------------------------------------ positive cases --

function normalize(spec: Record<string, unknown>, context: Partial<SpecContext> = {}): NormalizedSpec {
  return normalizeSpec(spec, { cwd: context.cwd ?? tmp, env: context.env ?? {} });
}

test('defaults: an exact, canonical spec', () => {
  const spec = normalize({ command: '/bin/sh' }, { env: { HOME: '/root', PATH: '/usr/bin' } });
  assert.deepEqual(spec, {
    command: '/bin/sh',
    file: '/bin/sh',
    args: [],
    cwd: tmp,
    env: {},
    logFile: undefined,
    stdio: 'ignore',
    name: undefined,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: DEFAULT_STOP_TIMEOUT_MS,
    strategy: 'auto',
    parentDeathSignal: true,
  });
  assert.equal(DEFAULT_STOP_TIMEOUT_MS, 5000);
  // Optional fields given as undefined are the same as absent.
  const explicit = normalize(
    {
      command: '/bin/sh',
      args: undefined,
      cwd: undefined,
      env: undefined,
      inheritEnv: undefined,
      logFile: undefined,
      stdio: undefined,
      name: undefined,
      stopSignal: undefined,
      stopTimeoutMs: undefined,
      strategy: undefined,
      parentDeathSignal: undefined,
    },
    { env: { HOME: '/root' } },
  );
  assert.deepEqual(explicit, spec);
  const bare: Record<string, string> = Object.create(null) as Record<string, string>;
  bare.A = '1';
  assert.deepEqual(normalize({ command: '/bin/sh', env: bare }).env, { A: '1' });
  const args = ['-c', 'true'];
  const copied = normalize({ command: '/bin/sh', args });
  args.push('mutated');
  assert.deepEqual(copied.args, ['-c', 'true']);
});

test('a bare command is looked up in the spec env.PATH, never the manager PATH', () => {
  const tool = join(binDir, 'tool');
  const other = join(otherBinDir, 'tool');
  assert.equal(normalize({ command: 'tool', env: { PATH: otherBinDir } }, { env: { PATH: binDir } }).file, other);
  assert.equal(normalize({ command: 'tool', env: { PATH: `${binDir}:${otherBinDir}` } }).file, tool);
  assert.equal(normalize({ command: 'tool', env: { PATH: `${otherBinDir}:${binDir}` } }).file, other);
  // execvp semantics: a non-executable match is skipped when a later entry has one; an empty entry is cwd.
  assert.equal(normalize({ command: 'tool', env: { PATH: `${noexecDir}:${binDir}` } }).file, tool);
  assert.equal(normalize({ command: 'tool', env: { PATH: `/nonexistent::${otherBinDir}` } }, { cwd: binDir }).file, tool);
  assert.equal(normalize({ command: 'tool', inheritEnv: ['PATH'] }, { env: { PATH: binDir } }).file, tool);
  assert.throws(() => normalize({ command: 'tool', env: { PATH: emptyDir } }, { env: { PATH: binDir } }), (e: unknown) => isTendError(e, 'SPEC_COMMAND_NOT_FOUND'));
});

test('without PATH in the spec, the default search path is used (and no PATH is added)', () => {
  const expected = DEFAULT_DIRS.map((d) => join(d, 'sh')).find((p) => existsSync(p));
  assert.ok(expected, 'no sh in the default search path');
  const spec = normalize({ command: 'sh' }, { env: { PATH: emptyDir } });
  assert.equal(spec.file, expected);
  assert.equal('PATH' in spec.env, false);
  assert.throws(
    () => normalize({ command: 'tool' }, { env: { PATH: binDir } }),
    (e: unknown) => isTendError(e, 'SPEC_COMMAND_NOT_FOUND') && e.message.includes('/usr/bin'),
  );
});

test('relative commands, cwd and logFile resolve against the right directory', () => {
  assert.equal(normalize({ command: './bin/tool' }).file, join(binDir, 'tool'));
  assert.equal(normalize({ command: 'bin/tool' }).file, join(binDir, 'tool'));
  const inBin = normalize({ command: './tool', cwd: 'bin' });
  assert.equal(inBin.cwd, binDir);
  assert.equal(inBin.file, join(binDir, 'tool'));
  assert.equal(inBin.command, './tool');
  assert.equal(normalize({ command: '../bin/tool', cwd: otherBinDir }).file, join(binDir, 'tool'));
  assert.equal(normalize({ command: '/bin/sh', logFile: 'logs/out.log' }).logFile, join(logDir, 'out.log'));
  assert.equal(normalize({ command: '/bin/sh', logFile: join(logDir, 'abs.log') }).logFile, join(logDir, 'abs.log'));
});

test('environment: exact by default, inheritEnv true or a list, env wins, TEND_ID never inherited', () => {
  const parent = { HOME: '/home/u', LANG: 'C.UTF-8', B: 'parent', TEND_ID: 'outer-tree', GONE: undefined };
  assert.deepEqual(normalize({ command: '/bin/sh', env: { A: '1' } }, { env: parent }).env, { A: '1' });
  assert.deepEqual(normalize({ command: '/bin/sh', inheritEnv: false }, { env: parent }).env, {});
  assert.deepEqual(normalize({ command: '/bin/sh', inheritEnv: true }, { env: parent }).env, { HOME: '/home/u', LANG: 'C.UTF-8', B: 'parent' });
  assert.deepEqual(normalize({ command: '/bin/sh', inheritEnv: ['HOME', 'MISSING', 'GONE', 'TEND_ID'] }, { env: parent }).env, { HOME: '/home/u' });
  assert.deepEqual(normalize({ command: '/bin/sh', inheritEnv: true, env: { B: 'spec', C: '' } }, { env: parent }).env, {
    HOME: '/home/u',
    LANG: 'C.UTF-8',
    B: 'spec',
    C: '',
  });
  assert.deepEqual(normalize({ command: '/bin/sh', inheritEnv: ['B'], env: { B: 'spec' } }, { env: parent }).env, { B: 'spec' });
  assert.deepEqual(normalize({ command: '/bin/sh', inheritEnv: [] }, { env: parent }).env, {});
});

test('signal names and numbers normalize to the canonical name', () => {
  const cases: [unknown, string][] = [
    ['term', 'SIGTERM'],
    ['TERM', 'SIGTERM'],
    ['sigterm', 'SIGTERM'],
    ['SIGTERM', 'SIGTERM'],
    [15, 'SIGTERM'],
    ['15', 'SIGTERM'],
    ['hup', 'SIGHUP'],
    [2, 'SIGINT'],
    ['SIGINT', 'SIGINT'],
    [9, 'SIGKILL'],
    ['usr1', 'SIGUSR1'],
    ['SIGQUIT', 'SIGQUIT'],
  ];
  for (const [input, expected] of cases) assert.equal(normalize({ command: '/bin/sh', stopSignal: input }).stopSignal, expected, String(input));
});

test('other valid values pass through', () => {
  assert.equal(normalize({ command: '/bin/sh', stopTimeoutMs: 0 }).stopTimeoutMs, 0);
  assert.equal(normalize({ command: '/bin/sh', stopTimeoutMs: 2_147_483_647 }).stopTimeoutMs, 2_147_483_647);
  for (const strategy of ['auto', 'cgroup', 'pidns', 'pgroup']) assert.equal(normalize({ command: '/bin/sh', strategy }).strategy, strategy);
  for (const stdio of ['ignore', 'inherit', 'pipe']) assert.equal(normalize({ command: '/bin/sh', stdio }).stdio, stdio);
  assert.equal(normalize({ command: '/bin/sh', parentDeathSignal: false }).parentDeathSignal, false);
  for (const name of ['web', 'api.v2', 'job_1-a@host', 'x'.repeat(128)]) assert.equal(normalize({ command: '/bin/sh', name }).name, name);
  assert.deepEqual(normalize({ command: '/bin/sh', args: ['', ' ', 'ü', '$(rm -rf /)'] }).args, ['', ' ', 'ü', '$(rm -rf /)']);
});

test('a started child gets exactly the normalized environment plus TEND_ID, and the program from the spec PATH', async () => {
  // "tool" in otherBin is sleep under another name; the manager's PATH has no "tool" at all.
  const pathDir = join(tmp, 'sleep-bin');
  mkdirSync(pathDir);
  symlinkSync(SLEEP, join(pathDir, 'tool'));
  const local = await ProcessManager.create({
    handleSignals: false,
    cgroupParent,
    env: { HOME: '/home/someone', PATH: '/usr/bin:/bin', SECRET: 'do-not-pass', TEND_ID: 'outer-tree' },
  });
  try {
    const handle = await local.start({ command: 'tool', args: ['1000'], env: { PATH: pathDir, A: '1' }, inheritEnv: ['HOME'], strategy: useCgroup ? 'cgroup' : 'auto' });
    const status = handle.status();
    assert.equal(status.state, 'running');
    const pid = status.state === 'running' ? status.pid : -1;
    await waitFor(() => readProcStat(pid)?.comm === 'tool', { what: 'the child to exec tool' });
    assert.equal(readlinkSync(`/proc/${pid}/exe`), SLEEP);
    const env = Object.fromEntries(parseEnviron(readFileSync(`/proc/${pid}/environ`, 'latin1')));
    assert.deepEqual(env, { PATH: pathDir, A: '1', HOME: '/home/someone', TEND_ID: handle.id });
    await handle.stop({ signal: 'SIGKILL' });
    assert.deepEqual(ours(), []);
  } finally {
    await local.shutdown({ signal: 'SIGKILL' });
  }
});
