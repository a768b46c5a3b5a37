// The suite-wide leak check (scripts/run-tests.mjs) counts what its suite
// started and nothing else: a foreign tend daemon and a foreign marked
// process alive during the run do not fail it, and a process the suite leaks
// does. Each run here is a real nested run of the runner on a two-file suite
// in test/fixtures/leak-suite.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUN_VARIABLE, cleanupByMarker } from '../helpers/cleanup.js';
import { NODE, PATH, fixturePath } from '../helpers/fixtures.js';
import { findMarked } from '../helpers/proc-scan.js';
import { repoRoot, run } from '../helpers/unit-local.js';

interface Candidate {
  readonly pid: number;
  readonly cmdline: string;
  readonly daemon: boolean;
  readonly env: ReadonlyMap<string, string>;
  readonly cwd: string;
  readonly cgroup: string | undefined;
}
interface Scope {
  readonly root: string;
  readonly cgroup: string | undefined;
  readonly handles: ReadonlySet<string>;
}
interface LeakScope {
  classifyCandidate(candidate: Candidate, scope: Scope): string | undefined;
  scanCandidates(): Candidate[];
  isDaemonCommand(cmdline: string): boolean;
  readSuiteHandles(root: string): Set<string>;
}

const RUNNER = join(repoRoot, 'scripts/run-tests.mjs');
const leakScope = (await import(new URL('scripts/leak-scope.mjs', `file://${repoRoot}`).href)) as LeakScope;

const RUN = `leak-scope-${randomBytes(6).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'tls-'));
const children = new Set<ChildProcess>();

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await cleanupByMarker({ variable: RUN_VARIABLE, value: RUN });
  rmSync(tmp, { recursive: true, force: true });
});

const candidate = (over: Partial<Candidate>): Candidate => ({ pid: 4242, cmdline: 'sleep 600', daemon: false, env: new Map(), cwd: '/', cgroup: '/', ...over });
const scope: Scope = { root: '/tmp/ts-suite', cgroup: '/tend-suite-ts-suite', handles: new Set(['suite-handle']) };

describe('classifyCandidate: the suite is answerable for its own processes only', () => {
  test('each rule claims the suite\'s processes', () => {
    const own: [string, Candidate][] = [
      ['in the suite cgroup', candidate({ cgroup: '/tend-suite-ts-suite/tend/h1' })],
      ['TEND_HOME under the suite root', candidate({ daemon: true, cmdline: 'tend daemon', env: new Map([['TEND_HOME', '/tmp/ts-suite/tsv-1']]) })],
      ['working directory under the suite root', candidate({ cwd: '/tmp/ts-suite/tup-2' })],
      ['command line names the suite root', candidate({ cmdline: 'tend-reaper --log /tmp/ts-suite/home/lifecycle.jsonl' })],
      ['handle recorded under the suite root', candidate({ env: new Map([['TEND_ID', 'suite-handle']]) })],
    ];
    for (const [reason, c] of own) assert.equal(leakScope.classifyCandidate(c, scope), reason);
  });

  test('a foreign daemon and a foreign marked process are not the suite\'s', () => {
    const foreign = [
      candidate({ daemon: true, cmdline: 'tend daemon', env: new Map([['TEND_HOME', '/home/dev/.local/state/tend']]) }),
      candidate({ env: new Map([['TEND_ID', 'someone-else'], ['TEND_HOME', '/tmp/ts-suite-other']]), cwd: '/tmp/ts-suite-other' }),
      candidate({ cgroup: '/tend-suite-ts-suite-other/tend/h1', env: new Map([['TEND_ID', 'x']]) }),
    ];
    for (const c of foreign) assert.equal(leakScope.classifyCandidate(c, scope), undefined, `${c.cmdline} ${[...c.env].join(' ')}`);
    // Negative control: the same processes, seen from a scope they belong to, are claimed.
    const wide: Scope = { root: '/tmp', cgroup: '/', handles: new Set() };
    for (const c of foreign) assert.notEqual(leakScope.classifyCandidate(c, wide), undefined);
  });

  test('without a cgroup, a process with nothing of the suite in it is not seen (the stated blind spot)', () => {
    const bare = candidate({ cgroup: '/tend-suite-ts-suite/tend/h1', env: new Map([['TEND_ID', 'no-record']]) });
    assert.equal(leakScope.classifyCandidate(bare, scope), 'in the suite cgroup');
    assert.equal(leakScope.classifyCandidate(bare, { ...scope, cgroup: undefined }), undefined);
  });

  test('the daemon\'s command lines are recognized, other tend commands are not', () => {
    assert.ok(leakScope.isDaemonCommand('tend daemon'));
    assert.ok(leakScope.isDaemonCommand('/usr/bin/node /x/dist/src/bin/tend.js daemon run'));
    assert.ok(!leakScope.isDaemonCommand('/usr/bin/node /x/dist/src/bin/tend.js daemon stop'));
    assert.ok(!leakScope.isDaemonCommand('tend daemonic'));
  });

  test('readSuiteHandles reads record names and lifecycle log lines, and survives torn lines', () => {
    const root = mkdtempSync(join(tmp, 'handles-'));
    const records = join(root, 'home', 'projects', 'p', 'records');
    mkdirSync(records, { recursive: true });
    writeFileSync(join(records, 'rec-1.json'), '{}');
    writeFileSync(join(root, 'home', 'lifecycle.jsonl'), `${JSON.stringify({ event: 'register', handle: 'log-1' })}\n{"torn\n${JSON.stringify({ event: 'reaper-start', handle: null })}\n`);
    assert.deepEqual([...leakScope.readSuiteHandles(root)].sort(), ['log-1', 'rec-1']);
  });
});

/** Starts a process outside any nested run's scope and waits until its environment is in /proc. */
async function startForeign(file: string, args: readonly string[], env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(file, args, { env: { PATH, [RUN_VARIABLE]: RUN, ...env }, stdio: 'ignore' });
  children.add(child);
  await once(child, 'spawn');
  return child;
}

function runSuite(filter: string, extraEnv: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(NODE, [RUNNER, `--dir=${fixturePath('leak-suite')}`, filter], {
    cwd: repoRoot,
    // Without NODE_TEST_CONTEXT, which would make the nested `node --test` report to this runner instead of printing.
    env: { ...withoutTestContext(process.env), [RUN_VARIABLE]: RUN, ...extraEnv },
  }, 60_000);
}

function withoutTestContext(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy.NODE_TEST_CONTEXT;
  return copy;
}

describe('run-tests.mjs on a nested suite', { concurrency: false }, () => {
  test('a foreign tend daemon and a foreign marked process alive during the run do not fail it', async () => {
    const foreignHome = mkdtempSync(join(tmp, 'foreign-home-'));
    // Shaped like a daemon to the check: its command line ends in `tend.js daemon run`.
    const fakeBin = join(foreignHome, 'tend.js');
    writeFileSync(fakeBin, 'setInterval(() => {}, 1 << 30);\n');
    const daemon = await startForeign(NODE, [fakeBin, 'daemon', 'run'], { TEND_HOME: foreignHome });
    const marked = await startForeign('sleep', ['600'], { TEND_ID: `${RUN}-foreign`, TEND_HOME: foreignHome });

    // Negative control: the scan sees both, so what follows is their exclusion, not blindness.
    const seen = leakScope.scanCandidates().map((c) => c.pid);
    assert.ok(seen.includes(daemon.pid ?? -1), 'the scan sees the foreign daemon');
    assert.ok(seen.includes(marked.pid ?? -1), 'the scan sees the foreign marked process');

    const result = await runSuite('clean.test.js');
    assert.equal(result.code, 0, `the run passes\n${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /leak check: no process carrying TEND_ID/);
    for (const child of [daemon, marked]) assert.equal(child.exitCode === null && child.signalCode === null, true, `foreign pid ${child.pid} was left alone`);
  });

  test('a process the suite leaks fails the run, and the runner leaves nothing behind', async () => {
    const id = `${RUN}-leak`;
    const result = await runSuite('leaks.test.js', { LEAK_FIXTURE_ID: id });
    const leaked = [...result.stdout.matchAll(/leaked (\d+) (\S+)/g)].map((m) => ({ pid: Number(m[1]), id: m[2] ?? '' }));
    assert.equal(leaked.length, 2, `the fixture reports its two leaks\n${result.stdout}`);
    assert.equal(result.code, 1, `the run fails\n${result.stdout}\n${result.stderr}`);
    const withCgroup = !/leak check: without a cgroup/.test(result.stdout);
    for (const { pid, id: marker } of leaked) {
      const expected = withCgroup || marker.endsWith('-homed');
      assert.equal(new RegExp(`^  ${pid} .*sleep 600`, 'm').test(result.stderr), expected, `leak ${marker} (pid ${pid}) ${expected ? 'is' : 'is not'} named\n${result.stderr}`);
    }
    if (withCgroup) {
      assert.match(result.stderr, /SIGKILLed 2 process\(es\) left in the suite's cgroup/);
      assert.deepEqual(findMarked({ prefix: id }).map((p) => p.pid), [], 'the runner killed what its suite left in its cgroup');
    }
  });

  test('without a cgroup, a leak with the suite\'s TEND_HOME still fails the run; one with nothing of the suite is not seen', async () => {
    const id = `${RUN}-nocg`;
    const result = await runSuite('leaks.test.js', { LEAK_FIXTURE_ID: id, TEND_LEAK_CHECK_CGROUP: 'off' });
    assert.match(result.stdout, /leak check: without a cgroup/);
    const pid = (marker: string): number => Number(new RegExp(`leaked (\\d+) ${marker}$`, 'm').exec(result.stdout)?.[1]);
    assert.equal(result.code, 1, `the run fails\n${result.stdout}\n${result.stderr}`);
    assert.match(result.stderr, new RegExp(`^  ${pid(`${id}-homed`)} .*\\(TEND_HOME under the suite root\\)$`, 'm'));
    assert.doesNotMatch(result.stderr, new RegExp(`^  ${pid(`${id}-bare`)} `, 'm'), 'the blind spot leak-scope.mjs states');
    assert.equal(findMarked({ prefix: id }).length, 2, 'without a cgroup the runner kills nothing; after() does');
  });
});
