// The command line, driven as a user drives it: `tend (the bundled bin, dist/src/bin/tend.js)`
// spawned with a deadline, judged by exit code, output and /proc. Processes a
// command starts carry TEST_TOKEN=<per-test token> (passed with --env) so that
// what survives tend can be found in /proc without trusting tend.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { strategyNames, type StrategyName } from '../../src/core/types.js';
import { detect } from '../../src/platform/detect.js';
import { scanProcesses, type ProcInfo } from '../helpers/proc-scan.js';
import { makeTempDir, removeDir, repoRoot, Running, type RunResult } from '../helpers/unit-local.js';
import { waitFor, withDeadline } from '../helpers/wait.js';

const TEND = join(repoRoot, 'dist/src/bin/tend.js');
const RUN_ID = randomBytes(6).toString('hex');
/** The tend processes themselves carry this. */
const CLI_MARK = `test-cli-${RUN_ID}`;
const tmp = makeTempDir();
const home = join(tmp, 'home');
mkdirSync(home);
const BASE_ENV = { TEND_ID: CLI_MARK, PATH: '/usr/local/bin:/usr/bin:/bin', HOME: home, LANG: 'C', OUTER_ONLY: 'outer' };
const caps = detect();

after(() => {
  for (const p of scanProcesses()) {
    if (p.env.get('TEND_ID') !== CLI_MARK && !(p.env.get('TEST_TOKEN') ?? '').startsWith(RUN_ID)) continue;
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  removeDir(tmp);
});

let tokens = 0;
function newToken(): string {
  return `${RUN_ID}-${++tokens}`;
}

function startTend(args: readonly string[], options: { env?: Record<string, string>; cwd?: string } = {}): Running {
  return new Running(process.execPath, [TEND, ...args], { env: { ...BASE_ENV, ...options.env }, cwd: options.cwd ?? tmp });
}

function tend(args: readonly string[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<RunResult> {
  return startTend(args, options).result();
}

/** Live processes started under this token (zombies have no code left to run and are ignored). */
function survivors(token: string): ProcInfo[] {
  return scanProcesses({ live: true }).filter((p) => p.env.get('TEST_TOKEN') === token);
}

/**
 * Waits for tend to exit, checks at that moment that nothing started under
 * `token` is alive, then waits for its output to close; returns the exit code.
 */
async function exitAndCheckSurvivors(run: Running, token: string): Promise<number | null> {
  const { code, signal } = await withDeadline(run.exited, { what: `tend to exit (${run.describe()})`, timeoutMs: 20_000 });
  assert.equal(signal, null, `tend itself died of ${signal}`);
  assert.deepEqual(describe(survivors(token)), [], `processes outlived tend exec (exit code ${code}; stderr: ${run.stderr})`);
  await run.result();
  return code;
}

const describe = (ps: ProcInfo[]): string[] => ps.map((p) => `${p.pid} ${p.state} ${p.cmdline}`);

function availableStrategy(t: { skip(reason: string): void }, strategy: StrategyName): boolean {
  const support = caps.strategies[strategy];
  if (!support.available) t.skip(`strategy ${strategy} is not available here: ${support.reason}`);
  return support.available;
}

const envLines = (stdout: string): string[] => stdout.split('\n').filter(Boolean).sort();

// ----------------------------------------------------------------- usage --

test('tend --help and -h exit 0 and list the commands', async () => {
  for (const flag of ['--help', '-h']) {
    const r = await tend([flag]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Usage: tend <command>/);
    assert.match(r.stdout, /\bexec\b/);
    assert.match(r.stdout, /\bdetect\b/);
  }
});

test('tend without a command exits 2', async () => {
  const r = await tend([]);
  assert.equal(r.code, 2);
  assert.match(r.stdout + r.stderr, /Usage: tend/);
});

test('an unknown command exits 2 and names it', async () => {
  const r = await tend(['frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
});

test('tend exec --help exits 0 and documents the options', async () => {
  const r = await tend(['exec', '--help']);
  assert.equal(r.code, 0, r.stderr);
  for (const option of ['--inherit-env', '--env', '--cwd', '--log', '--stop-timeout', '--strategy']) assert.ok(r.stdout.includes(option), `help does not mention ${option}`);
});

test('tend exec usage errors exit 2 with a message that says what is wrong', async () => {
  const cases: [string[], RegExp][] = [
    [['exec'], /no command given/],
    [['exec', '--'], /no command given/],
    [['exec', 'sh'], /before --/],
    [['exec', '--bogus', '--', 'true'], /unknown option --bogus/],
    [['exec', '-Z', '--', 'true'], /unknown option -Z/],
    [['exec', '--stop-timeout', '5', '--', 'true'], /"5"[\s\S]*unit[\s\S]*5s/],
    [['exec', '--stop-timeout', 'soon', '--', 'true'], /"soon"/],
    [['exec', '--env', 'NOEQUALS', '--', 'true'], /"NOEQUALS"[\s\S]*NAME=VALUE/],
    [['exec', '--env', '=value', '--', 'true'], /"=value"/],
    [['exec', '--cwd'], /--cwd needs a value/],
    [['exec', '--help=yes'], /takes no value/],
    [['exec', '--strategy', 'docker', '--', 'true'], /SPEC_STRATEGY_UNKNOWN[\s\S]*"docker"/],
    [['exec', '--', 'nosuchcommand-tend-test'], /SPEC_COMMAND_NOT_FOUND[\s\S]*nosuchcommand-tend-test/],
    [['exec', '--cwd', join(tmp, 'missing'), '--', 'true'], /SPEC_CWD_MISSING/],
    [['exec', '--log', join(tmp, 'no-dir', 'x.log'), '--', 'true'], /SPEC_LOG_FILE_INVALID/],
  ];
  for (const [args, message] of cases) {
    const r = await tend(args);
    assert.equal(r.code, 2, `tend ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, message, `tend ${args.join(' ')}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, `tend ${args.join(' ')} printed a stack trace`);
  }
});

test('a duration without a unit is refused on the command line as in tend.yaml, with the fix', async () => {
  const r = await tend(['exec', '--stop-timeout', '10', '--', 'sh', '-c', 'exit 0']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /invalid duration for --stop-timeout: "10" has no unit\nWrite it with a unit: 10s for seconds, 10ms for milliseconds\./);
});

test('a valid --stop-timeout with a unit is accepted', async () => {
  for (const duration of ['500ms', '5s', '1.5m']) {
    const r = await tend(['exec', '--stop-timeout', duration, '--', 'sh', '-c', 'exit 0']);
    assert.equal(r.code, 0, `${duration}: ${r.stderr}`);
  }
});

// ------------------------------------------------------------ exit codes --

test('tend exec passes the exit code through, and 128+N for death by signal N', async () => {
  const cases: [string, number][] = [
    ['exit 0', 0],
    ['exit 7', 7],
    ['exit 255', 255],
    ['kill -TERM $$', 143],
    ['kill -KILL $$', 137],
    ['kill -INT $$', 130],
  ];
  for (const [script, expected] of cases) {
    const r = await tend(['exec', '--', 'sh', '-c', script]);
    assert.equal(r.code, expected, `sh -c '${script}': ${r.stderr}`);
    assert.equal(r.signal, null);
  }
});

// ------------------------------------------------------------ environment --

test('--env passes exactly the given variables (plus TEND_ID), nothing inherited', async () => {
  const r = await tend(['exec', '--env', 'A=1', '--', '/usr/bin/env']);
  assert.equal(r.code, 0, r.stderr);
  const lines = envLines(r.stdout);
  assert.equal(lines.length, 2, `unexpected environment: ${JSON.stringify(lines)}`);
  assert.equal(lines[0], 'A=1');
  assert.match(lines[1] ?? '', /^TEND_ID=.+/);
  assert.notEqual(lines[1], `TEND_ID=${CLI_MARK}`, "the child got tend's own TEND_ID");
  const empty = await tend(['exec', '-e', 'B=two words', '-e', 'C=', '--', '/usr/bin/env']);
  assert.deepEqual(envLines(empty.stdout).filter((l) => !l.startsWith('TEND_ID=')), ['B=two words', 'C=']);
});

test('--inherit-env=NAMES passes just those; --inherit-env passes everything but TEND_ID', async () => {
  const one = await tend(['exec', '--inherit-env=HOME', '--', '/usr/bin/env']);
  assert.equal(one.code, 0, one.stderr);
  const oneLines = envLines(one.stdout);
  assert.equal(oneLines.length, 2, JSON.stringify(oneLines));
  assert.equal(oneLines[0], `HOME=${home}`);
  assert.match(oneLines[1] ?? '', /^TEND_ID=/);

  const two = await tend(['exec', '--inherit-env=HOME,LANG', '--env', 'LANG=override', '--', '/usr/bin/env']);
  assert.deepEqual(envLines(two.stdout).filter((l) => !l.startsWith('TEND_ID=')), [`HOME=${home}`, 'LANG=override']);

  const all = await tend(['exec', '--inherit-env', '--', '/usr/bin/env']);
  const allLines = envLines(all.stdout);
  for (const line of ['OUTER_ONLY=outer', `HOME=${home}`, 'LANG=C', `PATH=${BASE_ENV.PATH}`]) assert.ok(allLines.includes(line), `${line} not inherited`);
  const ids = allLines.filter((l) => l.startsWith('TEND_ID='));
  assert.equal(ids.length, 1);
  assert.notEqual(ids[0], `TEND_ID=${CLI_MARK}`);
});

test('every strategy gives the command the same exact environment', async (t) => {
  for (const strategy of strategyNames) {
    await t.test(strategy, async (st) => {
      if (!availableStrategy(st, strategy)) return;
      const r = await tend(['exec', '--strategy', strategy, '--env', 'A=1', '--', '/usr/bin/env']);
      assert.equal(r.code, 0, r.stderr);
      const lines = envLines(r.stdout);
      assert.equal(lines.length, 2, JSON.stringify(lines));
      assert.equal(lines[0], 'A=1');
      assert.match(lines[1] ?? '', /^TEND_ID=/);
    });
  }
});

test('stdin reaches the command', async (t) => {
  for (const strategy of strategyNames) {
    await t.test(strategy, async (st) => {
      if (!availableStrategy(st, strategy)) return;
      const run = new Running(process.execPath, [TEND, 'exec', '--strategy', strategy, '--', 'cat'], {
        env: BASE_ENV,
        cwd: tmp,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      run.child.stdin?.end('line one\nline two\n');
      const r = await run.result();
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'line one\nline two\n');
    });
  }
});

// ------------------------------------------------------- files and places --

test('--log FILE appends stdout and stderr to the file (mode 0600), not to the terminal', async () => {
  const log = join(tmp, 'out.log');
  const first = await tend(['exec', '--log', log, '--', 'sh', '-c', 'echo to-stdout; echo to-stderr >&2']);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stdout, '');
  assert.doesNotMatch(first.stderr, /to-std/);
  assert.equal(readFileSync(log, 'utf8'), 'to-stdout\nto-stderr\n');
  assert.equal(statSync(log).mode & 0o777, 0o600);
  const second = await tend(['exec', '--log', log, '--', 'sh', '-c', 'echo again']);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(readFileSync(log, 'utf8'), 'to-stdout\nto-stderr\nagain\n');
});

test('--cwd sets the working directory, and a relative command is found there', async () => {
  const dir = join(tmp, 'work dir');
  mkdirSync(dir);
  writeFileSync(join(dir, 'hello.sh'), '#!/bin/sh\necho "hello from $(pwd)"\n', { mode: 0o755 });
  const pwd = await tend(['exec', '--cwd', dir, '--', '/bin/pwd']);
  assert.equal(pwd.code, 0, pwd.stderr);
  assert.equal(pwd.stdout.trim(), realpathSync(dir));
  const script = await tend(['exec', '-C', dir, '--', './hello.sh']);
  assert.equal(script.code, 0, script.stderr);
  assert.equal(script.stdout.trim(), `hello from ${realpathSync(dir)}`);
  const relative = await tend(['exec', '--cwd', 'work dir', '--', '/bin/pwd'], { cwd: tmp });
  assert.equal(relative.stdout.trim(), realpathSync(dir));
});

test('each --strategy runs the command and passes its exit code', async (t) => {
  for (const strategy of strategyNames) {
    await t.test(strategy, async (st) => {
      if (!availableStrategy(st, strategy)) return;
      const r = await tend(['exec', '--strategy', strategy, '--', 'sh', '-c', 'echo "ran $0"; exit 3', 'it']);
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.stdout, 'ran it\n');
      const killed = await tend(['exec', '--strategy', strategy, '--', 'sh', '-c', 'kill -TERM $$']);
      assert.equal(killed.code, 143, killed.stderr);
    });
  }
  const auto = await tend(['exec', '--strategy', 'auto', '--', 'sh', '-c', 'exit 4']);
  assert.equal(auto.code, 4, auto.stderr);
});

// ---------------------------------------------------- nothing left behind --

test('SIGTERM to tend exec stops the whole tree: exit 143, no survivor', async (t) => {
  for (const strategy of strategyNames) {
    await t.test(strategy, async (st) => {
      if (!availableStrategy(st, strategy)) return;
      const token = newToken();
      const run = startTend(['exec', '--strategy', strategy, '--env', `TEST_TOKEN=${token}`, '--', 'sh', '-c', 'sleep 1000 & echo ready; wait']);
      await run.waitForOutput(/ready/);
      // Control: the scan sees the tree (the shell and its sleep) while it runs.
      await waitFor(() => survivors(token).some((p) => p.cmdline.startsWith('sleep')), { what: 'the sleep to show up in /proc' });
      run.child.kill('SIGTERM');
      const code = await exitAndCheckSurvivors(run, token);
      assert.equal(code, 143, run.stderr);
    });
  }
});

test('SIGHUP to tend exec stops the whole tree: exit 129, no survivor', async () => {
  const token = newToken();
  const run = startTend(['exec', '--env', `TEST_TOKEN=${token}`, '--', 'sh', '-c', 'sleep 1000 & echo ready; wait']);
  await run.waitForOutput(/ready/);
  await waitFor(() => survivors(token).some((p) => p.cmdline.startsWith('sleep')), { what: 'the sleep to show up in /proc' });
  run.child.kill('SIGHUP');
  const code = await exitAndCheckSurvivors(run, token);
  assert.equal(code, 129, run.stderr);
});

test('a tree that ignores SIGTERM is killed once --stop-timeout has passed', async (t) => {
  for (const strategy of strategyNames) {
    await t.test(strategy, async (st) => {
      if (!availableStrategy(st, strategy)) return;
      const token = newToken();
      // SIG_IGN is inherited: the shell and its sleep both ignore SIGTERM.
      const script = 'trap "" TERM; sleep 1000 & echo ready; wait';
      const run = startTend(['exec', '--strategy', strategy, '--stop-timeout', '300ms', '--env', `TEST_TOKEN=${token}`, '--', 'sh', '-c', script]);
      await run.waitForOutput(/ready/);
      await waitFor(() => survivors(token).some((p) => p.cmdline.startsWith('sleep')), { what: 'the sleep to show up in /proc' });
      const sentAt = performance.now();
      run.child.kill('SIGTERM');
      const code = await exitAndCheckSurvivors(run, token);
      const elapsed = performance.now() - sentAt;
      assert.equal(code, 137, run.stderr);
      assert.ok(elapsed >= 250, `tend exited ${Math.round(elapsed)} ms after SIGTERM, before the 300 ms stop timeout`);
    });
  }
});

test('a second SIGINT kills a tree that ignores SIGINT', async (t) => {
  for (const strategy of strategyNames) {
    await t.test(strategy, async (st) => {
      if (!availableStrategy(st, strategy)) return;
      const token = newToken();
      // The shell traps SIGINT and says so; its background sleep ignores SIGINT (as every async list does).
      const script = 'trap "echo got-int" INT; sleep 1000 & echo ready; while :; do wait; done';
      const run = startTend(['exec', '--strategy', strategy, '--env', `TEST_TOKEN=${token}`, '--', 'sh', '-c', script]);
      await run.waitForOutput(/ready/);
      await waitFor(() => survivors(token).some((p) => p.cmdline.startsWith('sleep')), { what: 'the sleep to show up in /proc' });
      run.child.kill('SIGINT');
      await run.waitForOutput(/got-int/);
      assert.equal(run.child.exitCode, null, 'tend exited on the first SIGINT');
      assert.ok(survivors(token).some((p) => p.cmdline.startsWith('sleep')), 'the first SIGINT already killed the tree');
      run.child.kill('SIGINT');
      const code = await exitAndCheckSurvivors(run, token);
      assert.equal(code, 137, run.stderr);
      assert.match(run.stderr, /second interrupt/);
    });
  }
});

function daemonScript(fifo: string): string {
  // Waits (on a fifo) until its setsid'd daemon runs, then exits 0 and leaves it behind.
  return `mkfifo '${fifo}'; (setsid sh -c 'echo $$ > "$0"; exec sleep 1000' '${fifo}' &); read pid < '${fifo}'; echo "daemon=$pid"; exit 0`;
}

test('control: without tend the setsid daemon outlives its parent, and the scan finds it', async () => {
  const token = newToken();
  const raw = new Running('/bin/sh', ['-c', daemonScript(join(tmp, `fifo-${token}`))], {
    env: { PATH: BASE_ENV.PATH, TEND_ID: CLI_MARK, TEST_TOKEN: token },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  await raw.waitForOutput(/daemon=\d+/);
  const { code } = await raw.exited;
  assert.equal(code, 0);
  const daemon = Number(/daemon=(\d+)/.exec(raw.stdout)?.[1]);
  const found = await waitFor(() => survivors(token).find((p) => p.pid === daemon), { what: `the daemon ${daemon} in the scan` });
  process.kill(found.pid, 'SIGKILL');
  await waitFor(() => survivors(token).length === 0, { what: 'the daemon to die' });
});

test('a setsid daemon left behind by the command is stopped: exit 0, no survivor', async (t) => {
  for (const strategy of strategyNames) {
    await t.test(strategy, async (st) => {
      if (!availableStrategy(st, strategy)) return;
      const token = newToken();
      const script = daemonScript(join(tmp, `fifo-${token}`));
      const run = startTend(['exec', '--strategy', strategy, '--env', `TEST_TOKEN=${token}`, '--', 'sh', '-c', script]);
      const code = await exitAndCheckSurvivors(run, token);
      assert.equal(code, 0, run.stderr);
      const daemon = /daemon=(\d+)/.exec(run.stdout)?.[1];
      assert.ok(daemon, `the daemon never started: ${run.stdout} ${run.stderr}`);
      if (strategy !== 'pidns') {
        // Its pid is a host pid here; under pidns it is a namespace pid and the scan above is the check.
        const left = scanProcesses({ live: true }).find((p) => p.pid === Number(daemon) && p.env.get('TEST_TOKEN') === token);
        assert.equal(left, undefined, `the daemon ${daemon} survived`);
      }
    });
  }
});

test('a child left behind that ignores SIGTERM is killed after --stop-timeout; the exit code is the command\'s', async (t) => {
  for (const strategy of strategyNames) {
    await t.test(strategy, async (st) => {
      if (!availableStrategy(st, strategy)) return;
      const token = newToken();
      // Ignored before the fork, so the sleep ignores SIGTERM from its first instruction.
      const script = 'trap "" TERM; sleep 1000 & echo started; exit 3';
      const startedAt = performance.now();
      const run = startTend(['exec', '--strategy', strategy, '--stop-timeout', '500ms', '--env', `TEST_TOKEN=${token}`, '--', 'sh', '-c', script]);
      const code = await exitAndCheckSurvivors(run, token);
      const elapsed = performance.now() - startedAt;
      assert.equal(code, 3, `exit code ${code}; stderr: ${run.stderr}`);
      assert.equal(run.stdout, 'started\n');
      assert.ok(elapsed >= 450, `tend exited after ${Math.round(elapsed)} ms, before the 500 ms stop timeout could have passed`);
    });
  }
});

test('tend exec leaves no survivors when the command exits with children still running', async () => {
  const token = newToken();
  const r = await tend(['exec', '--env', `TEST_TOKEN=${token}`, '--', 'sh', '-c', 'sleep 1000 & sleep 1000 & echo started; exit 5']);
  assert.equal(r.code, 5, r.stderr);
  assert.equal(r.stdout, 'started\n');
  assert.deepEqual(describe(survivors(token)), []);
});

// ---------------------------------------------------------------- detect --

test('tend detect lists the three strategies and what auto picks', async () => {
  const r = await tend(['detect']);
  assert.equal(r.code, 0, r.stderr);
  for (const strategy of strategyNames) assert.match(r.stdout, new RegExp(`^(yes|no) +${strategy}\\b`, 'm'), `no line for ${strategy}`);
  assert.match(r.stdout, /auto picks: /);
});

test('tend detect --json prints one JSON document with availability and the best strategy', async () => {
  const r = await tend(['detect', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout) as {
    strategies: Record<string, { available: unknown; reason: unknown }>;
    best: unknown;
    parent_death_signal: { available: unknown; via: unknown; reason: unknown };
    cgroup: { mount: unknown; parent: unknown; cgroup_kill: unknown } | null;
  };
  assert.equal(typeof json.parent_death_signal.available, 'boolean', 'parent_death_signal.available');
  assert.equal(json.cgroup === null ? 'null' : typeof json.cgroup.cgroup_kill, caps.cgroup ? 'boolean' : 'null', 'cgroup.cgroup_kill');
  for (const strategy of strategyNames) {
    assert.equal(typeof json.strategies[strategy]?.available, 'boolean', `${strategy}.available`);
    assert.equal(typeof json.strategies[strategy]?.reason, 'string', `${strategy}.reason`);
  }
  const available = strategyNames.filter((s) => json.strategies[s]?.available === true);
  if (available.length === 0) {
    assert.equal(json.best, null);
  } else {
    assert.equal(json.best, available[0], 'best is not the strongest available strategy');
  }
  const again = await tend(['detect', '--json', 'extra']);
  assert.equal(again.code, 2);
});

test('tend detect leaves no probe cgroups behind', async (t) => {
  const parent = caps.cgroup?.parent;
  if (!parent) return t.skip(`no cgroup strategy here: ${caps.strategies.cgroup.reason}`);
  const run = startTend(['detect']);
  const pid = run.child.pid;
  const r = await run.result();
  assert.equal(r.code, 0, r.stderr);
  const probes = readdirSync(parent, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name.includes(`probe-${pid}`));
  assert.deepEqual(
    probes.map((e) => e.name),
    [],
    'probe cgroups left behind',
  );
});
