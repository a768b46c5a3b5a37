// What tend reports about a tree, checked against what really happened: exit
// codes, signals, a leader that left members behind (running-detached), stop
// idempotence, list(), the log file, the exact environment and the cwd.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessManager, isFinal, type ProcessHandle, type ProcessSpec } from '../../src/index.js';
import { strategySkipReason } from '../helpers/capabilities.js';
import { RUN_VARIABLE, cleanupByMarker, removeCgroups } from '../helpers/cleanup.js';
import { PATH, SH, fixturePath } from '../helpers/fixtures.js';
import { describeProcesses, findMarked, survivorsOf, type MarkedProcess } from '../helpers/proc-scan.js';
import { allStrategies, nativeStrategies, type StrategyConfig } from '../helpers/strategies.js';
import { waitFor, withDeadline } from '../helpers/wait.js';

const RUN = `status-${randomBytes(6).toString('hex')}`;
const ENV = { PATH, [RUN_VARIABLE]: RUN };
const SLEEP = ['/usr/bin/sleep', '/bin/sleep'].find((p) => existsSync(p)) ?? 'sleep';
const ENV_PROGRAM = ['/usr/bin/env', '/bin/env'].find((p) => existsSync(p)) ?? 'env';
const PWD_PROGRAM = ['/usr/bin/pwd', '/bin/pwd'].find((p) => existsSync(p)) ?? 'pwd';
const DEADLINE_MS = 10_000;

const skipReasons = new Map(await Promise.all(allStrategies.map(async (c) => [c, await strategySkipReason(c.strategy, c.options)] as const)));
const managers: ProcessManager[] = [];
const cgroups = new Set<string>();
const tempDirs: string[] = [];

async function newManager(config: StrategyConfig): Promise<ProcessManager> {
  const manager = await ProcessManager.create(config.options);
  managers.push(manager);
  return manager;
}

async function start(manager: ProcessManager, config: StrategyConfig, spec: ProcessSpec): Promise<ProcessHandle> {
  const handle = await manager.start({ env: ENV, stopTimeoutMs: 1000, strategy: config.strategy, ...spec });
  if (handle.cgroup) cgroups.add(handle.cgroup);
  return handle;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tend-status-'));
  tempDirs.push(dir);
  return dir;
}

function finalOf(handle: ProcessHandle, what: string) {
  return withDeadline(handle.wait(), { what, timeoutMs: DEADLINE_MS, detail: () => `status: ${JSON.stringify(handle.status())}` });
}

/** Waits until the tree's marked processes include one running `comm` (the command has been exec'd, past any wrapper). */
async function awaitCommand(handle: ProcessHandle, comm: string, count = 1): Promise<MarkedProcess[]> {
  let seen: MarkedProcess[] = [];
  return waitFor(() => ((seen = survivorsOf(handle.id)).filter((p) => p.comm === comm).length >= count ? seen : undefined), {
    what: `${count} ${comm} process(es) of ${handle.id}`,
    detail: () => describeProcesses(seen),
  });
}

function assertNoSurvivors(handle: ProcessHandle, seen: readonly MarkedProcess[] = []): void {
  const survivors = survivorsOf(handle.id, seen);
  assert.equal(survivors.length, 0, `processes carrying TEND_ID=${handle.id} survived:\n${describeProcesses(survivors)}`);
}

after(async () => {
  await cleanupByMarker({ variable: RUN_VARIABLE, value: RUN });
  await Promise.allSettled(managers.map((m) => withDeadline(m.shutdown({ timeoutMs: 0 }), { what: 'manager.shutdown() in cleanup', timeoutMs: 5_000 })));
  await cleanupByMarker({ variable: RUN_VARIABLE, value: RUN });
  removeCgroups(cgroups);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

for (const config of nativeStrategies) {
  describe(`status, ${config.title}`, { concurrency: true }, () => {
    test('a leader that exits with 7 is "exited" with code 7', async (t) => {
      const skip = skipReasons.get(config);
      if (skip) return t.skip(skip);
      const manager = await newManager(config);
      const handle = await start(manager, config, { command: SH, args: ['-c', 'exit 7'] });
      const final = await finalOf(handle, 'sh -c "exit 7" to finish');
      assert.equal(final.state, 'exited');
      assert.equal(final.state === 'exited' && final.exitCode, 7);
      assert.ok(final.state === 'exited' && final.at instanceof Date);
      assert.deepEqual(handle.status(), final);
      assertNoSurvivors(handle);
    });

    test('stop() of a plain sleep: "terminated" by SIGTERM', async (t) => {
      const skip = skipReasons.get(config);
      if (skip) return t.skip(skip);
      const manager = await newManager(config);
      const handle = await start(manager, config, { command: SLEEP, args: ['1000'] });
      const seen = await awaitCommand(handle, 'sleep');
      const running = handle.status();
      assert.equal(running.state, 'running');
      assert.ok(running.state === 'running' && seen.some((p) => p.pid === running.pid), `status().pid ${JSON.stringify(running)} is the sleep:\n${describeProcesses(seen)}`);
      const result = await withDeadline(handle.stop(), { what: 'stop()' });
      assert.deepEqual({ state: result.status.state, signal: result.status.state === 'terminated' ? result.status.signal : undefined }, { state: 'terminated', signal: 'SIGTERM' });
      assert.equal(result.forced, false, 'sleep dies of SIGTERM: no SIGKILL was needed');
      assert.equal(result.alreadyGone, false);
      assert.deepEqual(await finalOf(handle, 'wait() after stop()'), result.status);
      assertNoSurvivors(handle, seen);
    });

    test('a leader that leaves a setsid daemon is "running-detached", then final after stop()', async (t) => {
      const skip = skipReasons.get(config);
      if (skip) return t.skip(skip);
      const manager = await newManager(config);
      const detached: string[] = [];
      manager.on('detached', (h) => detached.push(h.id));
      const handle = await start(manager, config, { command: SH, args: [fixturePath('daemon.sh'), '--detach'] });
      const status = await waitFor(() => {
        const s = handle.status();
        return s.state === 'running-detached' ? s : undefined;
      }, { what: `${handle.id} to be running-detached`, detail: () => `status: ${JSON.stringify(handle.status())}\n${describeProcesses(survivorsOf(handle.id))}` });
      const daemon = await awaitCommand(handle, 'sleep');
      const escaped = daemon.find((p) => p.comm === 'sleep' && p.sid === p.pid);
      assert.ok(escaped, `the daemon leads its own session:\n${describeProcesses(daemon)}`);
      const current = handle.status();
      assert.equal(current.state, 'running-detached');
      if (current.state !== 'running-detached' || status.state !== 'running-detached') return;
      assert.equal(current.exitCode, 0, 'the leader exited with 0');
      assert.equal(current.signal, null);
      assert.ok(current.childPids.length > 0, 'childPids lists what is still running');
      assert.ok(current.childPids.includes(escaped.pid), `childPids ${JSON.stringify(current.childPids)} includes the daemon ${escaped.pid}`);
      for (const pid of current.childPids) {
        assert.ok(findMarked({ value: handle.id }).some((p) => p.pid === pid), `childPid ${pid} carries TEND_ID=${handle.id}`);
      }
      assert.deepEqual(detached, [handle.id], 'the manager emitted "detached" once');
      assert.ok(manager.list().some((h) => h.id === handle.id), 'a running-detached tree is listed');

      const result = await withDeadline(handle.stop(), { what: 'stop() of the detached tree' });
      assert.ok(isFinal(result.status), `final after stop(): ${JSON.stringify(result.status)}`);
      assert.deepEqual(
        { state: result.status.state, exitCode: result.status.state === 'exited' ? result.status.exitCode : undefined },
        { state: 'exited', exitCode: 0 },
        'the leader had exited with 0 by itself',
      );
      assert.ok(isFinal(handle.status()));
      assertNoSurvivors(handle, daemon);
      assert.ok(!manager.list().some((h) => h.id === handle.id), 'a final tree is not listed');
    });

    test('stop() is idempotent: a second call resolves, alreadyGone', async (t) => {
      const skip = skipReasons.get(config);
      if (skip) return t.skip(skip);
      const manager = await newManager(config);
      const handle = await start(manager, config, { command: SLEEP, args: ['1000'] });
      const seen = await awaitCommand(handle, 'sleep');
      const [first, concurrent] = await withDeadline(Promise.all([handle.stop(), handle.stop()]), { what: 'two concurrent stop() calls' });
      assert.equal(first.alreadyGone, false);
      assert.deepEqual(concurrent.status, first.status, 'concurrent calls agree on the final status');
      assertNoSurvivors(handle, seen);
      const second = await withDeadline(handle.stop(), { what: 'stop() of a stopped tree' });
      assert.equal(second.alreadyGone, true, `the tree was already gone when the second stop() began: ${JSON.stringify(second)}`);
      assert.equal(second.forced, false);
      assert.deepEqual(second.status, first.status);

      const exited = await start(manager, config, { command: SH, args: ['-c', 'exit 0'] });
      await finalOf(exited, 'sh -c "exit 0" to finish');
      const late = await withDeadline(exited.stop(), { what: 'stop() of a tree that had exited by itself' });
      assert.equal(late.alreadyGone, true);
      assert.deepEqual(late.status, exited.status());
    });

    test('list() shows running handles only', async (t) => {
      const skip = skipReasons.get(config);
      if (skip) return t.skip(skip);
      const manager = await newManager(config);
      const a = await start(manager, config, { command: SLEEP, args: ['1000'], name: 'a' });
      const b = await start(manager, config, { command: SLEEP, args: ['1000'], name: 'b' });
      const done = await start(manager, config, { command: SH, args: ['-c', 'exit 0'], name: 'done' });
      await finalOf(done, 'sh -c "exit 0" to finish');
      const seenA = await awaitCommand(a, 'sleep');
      const seenB = await awaitCommand(b, 'sleep');
      const ids = (): string[] => manager.list().map((h) => h.id).sort();
      assert.deepEqual(ids(), [a.id, b.id].sort());
      assert.ok(manager.list().every((h) => !isFinal(h.status())));
      await withDeadline(a.stop(), { what: 'stop() of a' });
      assert.deepEqual(ids(), [b.id]);
      await withDeadline(b.stop(), { what: 'stop() of b' });
      assert.deepEqual(ids(), []);
      assertNoSurvivors(a, seenA);
      assertNoSurvivors(b, seenB);
    });

    test('the log file gets stdout and stderr, appended, mode 0600', async (t) => {
      const skip = skipReasons.get(config);
      if (skip) return t.skip(skip);
      const manager = await newManager(config);
      const logFile = join(tempDir(), 'run.log');
      for (const run of ['one', 'two']) {
        const handle = await start(manager, config, { command: SH, args: ['-c', 'echo "out $0"; echo "err $0" >&2; echo "out again $0"', run], logFile });
        const final = await finalOf(handle, `run ${run} to finish`);
        assert.deepEqual({ state: final.state, exitCode: final.state === 'exited' ? final.exitCode : undefined }, { state: 'exited', exitCode: 0 });
      }
      assert.equal(readFileSync(logFile, 'utf8'), 'out one\nerr one\nout again one\nout two\nerr two\nout again two\n');
      assert.equal((statSync(logFile).mode & 0o777).toString(8), '600');
    });
  });
}

describe('the child sees exactly the given environment and cwd', { concurrency: true }, () => {
  for (const config of allStrategies) {
    test(`environment, ${config.title}`, async (t) => {
      const skip = skipReasons.get(config);
      if (skip) return t.skip(skip);
      const manager = await newManager(config);
      const logFile = join(tempDir(), 'env.log');
      const env = { ...ENV, GREETING: 'hello world', EMPTY: '', 'DOTTED.NAME': 'x=y' };
      const handle = await start(manager, config, { command: ENV_PROGRAM, env, logFile });
      await finalOf(handle, 'env to finish');
      const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l !== '').sort();
      const expected = [...Object.entries(env).map(([k, v]) => `${k}=${v}`), `TEND_ID=${handle.id}`].sort();
      assert.deepEqual(lines, expected);
    });

    test(`cwd, ${config.title}`, async (t) => {
      const skip = skipReasons.get(config);
      if (skip) return t.skip(skip);
      const manager = await newManager(config);
      const dir = tempDir();
      const logFile = join(tempDir(), 'pwd.log');
      const handle = await start(manager, config, { command: PWD_PROGRAM, cwd: dir, logFile });
      const final = await finalOf(handle, 'pwd to finish');
      assert.equal(final.state, 'exited');
      assert.equal(readFileSync(logFile, 'utf8'), `${realpathSync(dir)}\n`);
    });
  }
});
