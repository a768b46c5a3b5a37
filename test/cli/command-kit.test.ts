// What every command gets from the command kit, driven as a user drives it:
// the bundled bin (dist/src/bin/tend.js) spawned with a deadline, judged by
// exit code and output. None of these runs may start a daemon or a service.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { defineCommand } from '../../src/cli/command-kit.js';
import { isTendError } from '../../src/core/errors.js';
import { makeTempDir, removeDir, repoRoot, run, type RunResult } from '../helpers/unit-local.js';
import { scanProcesses } from '../helpers/proc-scan.js';

const TEND = join(repoRoot, 'dist/src/bin/tend.js');
const MARK = `test-kit-${randomBytes(6).toString('hex')}`;
const tmp = makeTempDir();
const home = join(tmp, 'home');
mkdirSync(home, { mode: 0o700 });
const ENV = { TEND_ID: MARK, TEND_HOME: home, PATH: '/usr/local/bin:/usr/bin:/bin', HOME: tmp, LANG: 'C' };

after(() => {
  for (const p of scanProcesses()) {
    if (p.env.get('TEND_ID') !== MARK && p.env.get('TEND_HOME') !== home) continue;
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  removeDir(tmp);
});

function tend(args: readonly string[]): Promise<RunResult> {
  return run(process.execPath, [TEND, ...args], { env: ENV, cwd: tmp });
}

/** Runs `args`, expects a usage error (exit 2, no stack trace) and returns its stderr. */
async function usageError(args: readonly string[]): Promise<string> {
  const r = await tend(args);
  assert.equal(r.code, 2, `tend ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  assert.equal(r.stdout, '', `tend ${args.join(' ')} printed to stdout`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `tend ${args.join(' ')} printed a stack trace`);
  return r.stderr;
}

/** The command names the main help lists. */
async function commandNames(): Promise<string[]> {
  const r = await tend(['--help']);
  assert.equal(r.code, 0, r.stderr);
  const section = r.stdout.split('Commands:\n')[1] ?? '';
  return [...section.matchAll(/^ {2}([a-z-]+) {2,}/gm)].map((m) => m[1] as string);
}

test('a mistyped command gets "did you mean" with the closest command; a far-off one does not', async () => {
  for (const [typed, meant] of [['stpo', 'stop'], ['restrat', 'restart'], ['lgos', 'logs'], ['kill-al', 'kill-all']] as const) {
    const stderr = await usageError([typed]);
    assert.match(stderr, new RegExp(`unknown command "${typed}"`));
    assert.ok(stderr.includes(`Did you mean \`${meant}\`?`), `tend ${typed}: ${stderr}`);
  }
  const far = await usageError(['frobnicate']);
  assert.match(far, /unknown command "frobnicate"/);
  assert.doesNotMatch(far, /Did you mean/);
  // A name every object has is not a command either.
  assert.match(await usageError(['constructor']), /unknown command "constructor"/);
});

test('a mistyped option gets "did you mean" with the closest option of that command', async () => {
  const follow = await usageError(['logs', 'web', '--folow']);
  assert.match(follow, /tend logs: unknown option --folow/);
  assert.ok(follow.includes('Did you mean `--follow`?'), follow);
  const timeout = await usageError(['stop', 'web', '--timout', '5s']);
  assert.ok(timeout.includes('Did you mean `--timeout`?'), timeout);
  const dryRun = await usageError(['recover', '--dryrun']);
  assert.ok(dryRun.includes('Did you mean `--dry-run`?'), dryRun);
  const bogus = await usageError(['ps', '--bogus']);
  assert.match(bogus, /unknown option --bogus/);
  assert.doesNotMatch(bogus, /Did you mean/);
});

test('a mistyped daemon action gets "did you mean"', async () => {
  const stderr = await usageError(['daemon', 'stpo']);
  assert.match(stderr, /unknown action "stpo"/);
  assert.ok(stderr.includes('Did you mean `stop`?'), stderr);
});

test('`tend help CMD` prints exactly what `tend CMD --help` prints, for every command', async () => {
  const names = await commandNames();
  assert.equal(names.length, 14, `the main help lists ${names.join(', ')}`);
  for (const name of names) {
    const [viaHelp, viaFlag, viaShort] = await Promise.all([tend(['help', name]), tend([name, '--help']), tend([name, '-h'])]);
    assert.equal(viaFlag.code, 0, `tend ${name} --help: ${viaFlag.stderr}`);
    assert.match(viaFlag.stdout, new RegExp(`^Usage: tend ${name}\\b`), `tend ${name} --help`);
    assert.deepEqual(viaHelp, viaFlag, `tend help ${name} differs from tend ${name} --help`);
    assert.deepEqual(viaShort, viaFlag, `tend ${name} -h differs from tend ${name} --help`);
  }
  assert.match(await usageError(['help', 'stpo']), /Did you mean `stop`\?/);
  const main = await tend(['help']);
  assert.equal(main.code, 0);
  assert.deepEqual(main, await tend(['--help']));
});

test('a stray positional argument is refused with exit 2 and named', async () => {
  const cases: [string[], RegExp][] = [
    [['ps', 'extra'], /tend ps: unexpected argument "extra"/],
    [['detect', 'extra'], /tend detect: unexpected argument "extra"/],
    [['kill-all', 'extra'], /tend kill-all: unexpected argument "extra"/],
    [['recover', 'extra'], /tend recover: unexpected argument "extra"/],
    [['up', 'extra'], /tend up: unexpected argument "extra"/],
    [['limit', '3', '4'], /tend limit: unexpected argument "4"/],
    [['daemon', 'status', 'extra'], /tend daemon: unexpected argument "extra"/],
    [['status', 'a', 'b'], /tend status: one service at a time; unexpected "b"/],
    [['delete', 'a', 'b'], /tend delete: one service at a time; unexpected "b"/],
    [['restart', 'a', 'b'], /tend restart: one service at a time; unexpected "b"/],
    [['logs', 'a', 'b'], /tend logs: one service at a time; unexpected "b"/],
    [['start', 'a', 'node'], /tend start: unexpected "node" before --[\s\S]*Put the command after --/],
    [['exec', 'node'], /tend exec: unexpected "node" before --[\s\S]*Put the command after --/],
    [['ps', '--', 'x'], /tend ps: unexpected argument "--"/],
    [['stop', 'a', '--', 'x'], /tend stop: unexpected argument "--"/],
  ];
  for (const [args, message] of cases) assert.match(await usageError(args), message, `tend ${args.join(' ')}`);
});

test('a missing service name is refused with exit 2 and the usage line', async () => {
  for (const command of ['start', 'status', 'restart', 'delete', 'logs']) {
    const stderr = await usageError([command]);
    assert.match(stderr, new RegExp(`tend ${command}: no service name given\\nUsage: tend ${command} NAME`));
  }
  assert.match(await usageError(['stop']), /tend stop: no service named/);
  assert.match(await usageError(['exec']), /tend exec: no command given/);
  // Every name goes through the one service-name rule, in every position.
  assert.match(await usageError(['stop', 'good', 'bad/name']), /tend stop: invalid service name "bad\/name"\nUse 1-64 letters/);
  assert.match(await usageError(['logs', 'bad name']), /tend logs: invalid service name "bad name"/);
});

test('--json is refused, with the reason, by a command that prints no JSON document', async () => {
  for (const args of [['exec', '--json', '--', 'true'], ['logs', 'web', '--json']]) {
    const stderr = await usageError(args);
    assert.match(stderr, new RegExp(`tend ${args[0] as string}: unknown option --json`));
    assert.match(stderr, /prints no JSON document/);
  }
  // A command that declares it takes it.
  const ps = await tend(['ps', '--json']);
  assert.equal(ps.code, 0, ps.stderr);
  assert.equal((JSON.parse(ps.stdout) as { daemon: boolean }).daemon, false);
});

test('typed flags: a duration needs a unit, a flag without a value is named', async () => {
  assert.match(await usageError(['stop', 'web', '--timeout', '5']), /invalid duration for --timeout: "5"[\s\S]*unit/);
  assert.match(await usageError(['logs', 'web', '--lines']), /--lines needs a value/);
  assert.match(await usageError(['ps', '--json=yes']), /--json takes no value/);
});

test('a command that is not found in PATH is explained in the command line\'s terms', async () => {
  const stderr = await usageError(['exec', '--', 'no-such-command-tend-kit-test']);
  assert.match(stderr, /SPEC_COMMAND_NOT_FOUND/);
  assert.ok(stderr.includes('--inherit-env=PATH'), stderr);
  assert.ok(stderr.includes('inherit_env: [PATH]'), stderr);
  assert.doesNotMatch(stderr, /inheritEnv/);
});

// ------------------------------------------------ the kit, in-process --

const probe = defineCommand({
  name: 'probe',
  help: 'Usage: tend probe NAME [TARGET...] [options]',
  flags: {
    all: { kind: 'boolean' },
    log: { kind: 'string', short: 'l' },
    env: { kind: 'list', short: 'e' },
    'inherit-env': { kind: 'optional' },
    timeout: { kind: 'duration', short: 't' },
  },
  positionals: [{ name: 'NAME', service: true }, { name: 'TARGET', service: true, optional: true, variadic: true }],
  json: true,
  run: (input) => {
    seen.push({ flags: input.flags, json: input.json, name: input.args.NAME, targets: input.args.TARGET });
    return Promise.resolve(0);
  },
});
const seen: unknown[] = [];

async function probeWith(argv: readonly string[]): Promise<unknown> {
  seen.length = 0;
  assert.equal(await probe.run(argv), 0);
  assert.equal(seen.length, 1, 'run was called once');
  return seen[0];
}

test('run gets typed, checked values: defaults when a flag is absent', async () => {
  assert.deepEqual(await probeWith(['web']), {
    flags: { all: false, log: undefined, env: [], 'inherit-env': undefined, timeout: undefined },
    json: false,
    name: 'web',
    targets: [],
  });
});

test('run gets typed, checked values: every kind of flag given', async () => {
  const argv = ['web', 'db', 'cache', '--all', '-l', 'out.log', '-e', 'A=1', '--env=B=2', '--inherit-env=PATH,HOME', '-t', '1.5s', '--json'];
  assert.deepEqual(await probeWith(argv), {
    flags: { all: true, log: 'out.log', env: ['A=1', 'B=2'], 'inherit-env': 'PATH,HOME', timeout: 1500 },
    json: true,
    name: 'web',
    targets: ['db', 'cache'],
  });
  assert.deepEqual(((await probeWith(['web', '--inherit-env'])) as { flags: object }).flags, { all: false, log: undefined, env: [], 'inherit-env': true, timeout: undefined });
});

test('run is not called when the command line is wrong: every refusal is CLI_USAGE', async () => {
  const cases: [string[], RegExp][] = [
    [[], /tend probe: no service name given\nUsage: tend probe NAME/],
    [['web', 'bad/target'], /tend probe: invalid service name "bad\/target"/],
    [['web', '--timeout', '90'], /invalid duration for --timeout: "90"/],
    [['web', '--tiemout', '9s'], /unknown option --tiemout\nDid you mean `--timeout`\?/],
    [['web', '--', 'x'], /tend probe: unexpected argument "--"/],
  ];
  for (const [argv, message] of cases) {
    seen.length = 0;
    await assert.rejects(probe.run(argv), (error: unknown) => isTendError(error, 'CLI_USAGE') && message.test(error.message), `probe ${argv.join(' ')}`);
    assert.deepEqual(seen, [], `probe ${argv.join(' ')} ran`);
  }
});

test('none of the above started a daemon', async () => {
  const r = await tend(['daemon', 'status', '--json']);
  assert.equal(r.code, 1, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { running: false, state_dir: home });
});
