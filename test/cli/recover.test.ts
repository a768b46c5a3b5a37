// `tend recover`, driven as a user drives it (the bundled bin, with TEND_HOME
// set): a stale tree is made for real (a host using tend, without a reaper
// and without a parent-death signal, is SIGKILLed), then listed by a dry run
// that must change nothing, then cleaned. What is alive is read from /proc.
// Every process started here carries TEND_TEST_RUN=<RUN>; `after` SIGKILLs
// whatever a failing test left.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { strategySkipReason } from '../helpers/capabilities.js';
import { RUN_VARIABLE, cleanupByMarker } from '../helpers/cleanup.js';
import { NODE, PATH, awaitFixtureReady, grandchildren } from '../helpers/fixtures.js';
import { ManagerHost, killLeftoverHosts } from '../helpers/manager-host.js';
import { describeProcesses, isAlive, survivorsOf, type MarkedProcess } from '../helpers/proc-scan.js';
import { makeStateDir, recordFiles, recordPath, removeStateDirs } from '../helpers/state.js';
import { nativeStrategies } from '../helpers/strategies.js';
import { outputOf, waitForExit } from '../helpers/wait.js';

const TEND = fileURLToPath(new URL('../../../dist/src/bin/tend.js', import.meta.url));
const RUN = `cli-recover-${randomBytes(6).toString('hex')}`;

after(async () => {
  await killLeftoverHosts();
  await cleanupByMarker({ variable: RUN_VARIABLE, prefix: RUN });
  removeStateDirs();
});

interface TendRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

async function tend(args: readonly string[], stateDir: string): Promise<TendRun> {
  const child = spawn(NODE, [TEND, ...args], { env: { PATH, TEND_HOME: stateDir, HOME: stateDir, [RUN_VARIABLE]: RUN }, stdio: ['ignore', 'pipe', 'pipe'] });
  outputOf(child.stdout);
  outputOf(child.stderr);
  const detail = (): string => `stdout:\n${outputOf(child.stdout)}\nstderr:\n${outputOf(child.stderr)}`;
  const { code, signal } = await waitForExit(child, { what: `tend ${args.join(' ')}`, timeoutMs: 20_000, detail });
  assert.equal(signal, null, `tend ${args.join(' ')} died of ${signal}\n${detail()}`);
  // The output is complete once the streams have ended, a moment after the exit.
  for (const stream of [child.stdout, child.stderr]) if (!stream.closed) await once(stream, 'close');
  return { code, stdout: outputOf(child.stdout), stderr: outputOf(child.stderr) };
}

interface RecoverJson {
  readonly dry_run: boolean;
  readonly count: number;
  readonly pids: number[];
  readonly handles: string[];
  readonly state_dir: string;
  readonly trees: { handle: string; pids: number[]; cgroup_removed: boolean }[];
}

function parseReport(run: TendRun): RecoverJson {
  assert.equal(run.code, 0, `exit code 0\n${run.stderr}`);
  try {
    return JSON.parse(run.stdout) as RecoverJson;
  } catch (error) {
    throw new Error(`--json must print one JSON document (${(error as Error).message}):\n${run.stdout}`, { cause: error });
  }
}

describe('tend recover: usage', () => {
  test('--help and -h exit 0 with the usage', async () => {
    const stateDir = makeStateDir('cli-recover');
    for (const flag of ['--help', '-h']) {
      const run = await tend(['recover', flag], stateDir);
      assert.equal(run.code, 0, `${flag}: exit 0\n${run.stderr}`);
      assert.match(run.stdout, /^Usage: tend recover/m);
      assert.match(run.stdout, /--dry-run/);
      assert.match(run.stdout, /--json/);
    }
  });

  test('an unknown option or an argument exits 2 and names it', async () => {
    const stateDir = makeStateDir('cli-recover');
    const unknown = await tend(['recover', '--bogus'], stateDir);
    assert.equal(unknown.code, 2, `unknown option: exit 2\n${unknown.stderr}`);
    assert.match(unknown.stderr, /bogus/);
    const positional = await tend(['recover', 'extra'], stateDir);
    assert.equal(positional.code, 2, `positional argument: exit 2\n${positional.stderr}`);
    assert.match(positional.stderr, /extra/);
  });

  test('an unsafe TEND_HOME is refused: exit 1, STATE_DIR_UNSAFE', async () => {
    const stateDir = makeStateDir('cli-recover');
    chmodSync(stateDir, 0o777);
    const run = await tend(['recover', '--json'], stateDir);
    assert.equal(run.code, 1, `exit 1\n${run.stdout}\n${run.stderr}`);
    assert.match(run.stderr, /STATE_DIR_UNSAFE/);
    assert.match(run.stderr, /chmod 700/);
  });

  test('with nothing to recover: exit 0, zero trees', async () => {
    const stateDir = makeStateDir('cli-recover');
    const report = parseReport(await tend(['recover', '--json'], stateDir));
    assert.equal(report.count, 0);
    assert.deepEqual(report.handles, []);
    assert.equal(report.state_dir, stateDir, 'the state directory comes from TEND_HOME');
    const human = await tend(['recover'], stateDir);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /cleaned 0 tree\(s\), 0 process\(es\)/);
  });
});

describe('tend recover: a stale tree', { concurrency: 3 }, () => {
  for (const config of nativeStrategies) {
    test(`${config.title}: --dry-run lists it and kills nothing; then recover kills it and removes its record`, async (t) => {
      const probeDir = makeStateDir('cli-recover-probe');
      const skip = await strategySkipReason(config.strategy, { ...config.options, stateDir: probeDir });
      if (skip) return t.skip(skip);
      const stateDir = makeStateDir('cli-recover');
      const spec = { command: grandchildren.command, args: grandchildren.args, env: { PATH, [RUN_VARIABLE]: RUN }, stdio: 'ignore', strategy: config.strategy, parentDeathSignal: false };
      const host = new ManagerHost({ options: { ...config.options, reaper: false }, spec }, stateDir, RUN);
      const { id, cgroup } = await host.started();
      const { processes } = await awaitFixtureReady(grandchildren, { value: id }, undefined);
      host.kill('SIGKILL');
      await host.exited();
      const alive = (ps: readonly MarkedProcess[]): MarkedProcess[] => ps.filter((p) => isAlive(p.pid, p.startTime));
      assert.equal(alive(processes).length, processes.length, 'control: nothing cleaned the tree at its manager\'s death');
      const pids = processes.map((p) => p.pid).sort((a, b) => a - b);

      const dry = parseReport(await tend(['recover', '--dry-run', '--json'], stateDir));
      assert.equal(dry.dry_run, true);
      assert.equal(dry.count, 1);
      assert.deepEqual(dry.handles, [id]);
      assert.deepEqual([...dry.pids].sort((a, b) => a - b), pids, 'the dry run lists every pid of the tree');
      assert.deepEqual(alive(processes).map((p) => p.pid).sort((a, b) => a - b), pids, 'the dry run killed nothing');
      assert.deepEqual(recordFiles(stateDir), [`${id}.json`], 'the dry run keeps the record');
      if (cgroup) assert.ok(existsSync(cgroup), 'the dry run keeps the cgroup');

      const real = parseReport(await tend(['recover', '--json'], stateDir));
      assert.equal(real.dry_run, false);
      assert.equal(real.count, 1);
      assert.deepEqual(real.handles, [id]);
      assert.deepEqual([...real.pids].sort((a, b) => a - b), pids, 'recover reports every pid it killed');
      const left = survivorsOf(id, processes);
      assert.equal(left.length, 0, `right after tend recover exited, members of the tree survived:\n${describeProcesses(left)}`);
      assert.equal(existsSync(recordPath(stateDir, id)), false, 'the record is removed');
      if (cgroup) {
        assert.equal(real.trees[0]?.cgroup_removed, true);
        assert.equal(existsSync(cgroup), false, `the tree's cgroup ${cgroup} is removed`);
      }

      const again = parseReport(await tend(['recover', '--json'], stateDir));
      assert.equal(again.count, 0, 'a second run finds nothing left');
    });
  }
});

