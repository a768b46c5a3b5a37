// "Zero survivors", with real processes: for every containment strategy
// (forced, and the forced fallbacks) and every way a tree can end (stop(), the
// host exiting, the host getting SIGTERM or SIGINT), misbehaving fixture
// programs are started and afterwards /proc is scanned for anything still
// carrying their TEND_ID. tend's own bookkeeping is never trusted for that.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessManager, isFinal } from '../../src/index.js';
import { strategySkipReason } from '../helpers/capabilities.js';
import { RUN_VARIABLE, cleanupByMarker, removeCgroups } from '../helpers/cleanup.js';
import {
  NODE,
  PATH,
  SH,
  allFixtures,
  awaitFixtureReady,
  fixturePath,
  forkStorm,
  grandchildren,
  portHolder,
  setsidDaemon,
  sigtermIgnorer,
  type Fixture,
} from '../helpers/fixtures.js';
import { isPortFree } from '../helpers/ports.js';
import { allStrategies, nativeStrategies, type StrategyConfig } from '../helpers/strategies.js';
import { describeProcesses, survivorsOf, type MarkedProcess } from '../helpers/proc-scan.js';
import { outputOf, waitFor, waitForExit, waitForLine, withDeadline } from '../helpers/wait.js';

const RUN = `containment-${randomBytes(6).toString('hex')}`;
const FIXTURE_ENV = { PATH, [RUN_VARIABLE]: RUN };
/** Short, so that the SIGTERM ignorer is SIGKILLed quickly. */
const STOP_TIMEOUT_MS = 300;
const DEADLINE_MS = 20_000;
const HOST = fixturePath('host.mjs');

type Config = StrategyConfig;
const configs = allStrategies;

const skipReasons = new Map(await Promise.all(configs.map(async (c) => [c, await strategySkipReason(c.strategy, c.options)] as const)));

const managers = new Map<Config, Promise<ProcessManager>>();
const hosts = new Set<ChildProcess>();
const cgroups = new Set<string>();
const tempDirs: string[] = [];

function managerFor(config: Config): Promise<ProcessManager> {
  let manager = managers.get(config);
  if (!manager) {
    manager = ProcessManager.create(config.options);
    managers.set(config, manager);
  }
  return manager;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tend-containment-'));
  tempDirs.push(dir);
  return dir;
}

function assertNoSurvivors(id: string, when: string, seen: readonly MarkedProcess[] = []): void {
  const survivors = survivorsOf(id, seen);
  assert.equal(survivors.length, 0, `${when}: ${survivors.length} process(es) carrying TEND_ID=${id} survived:\n${describeProcesses(survivors)}`);
}

interface StartedHost {
  readonly host: ChildProcessWithoutNullStreams;
  /** The tree's handle id, as the host printed it. */
  readonly id: string;
  readonly hostOutput: () => string;
}

/** Runs test/fixtures/host.mjs with `spec` and waits until it says "started". */
async function startHost(config: Config, spec: Record<string, unknown>, endAfterStart?: 'exit' | NodeJS.Signals): Promise<StartedHost> {
  const host = spawn(NODE, [HOST, JSON.stringify({ options: config.options, spec, endAfterStart })], {
    env: { PATH, [RUN_VARIABLE]: RUN },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  hosts.add(host);
  outputOf(host.stderr);
  const hostOutput = (): string => `host stdout:\n${outputOf(host.stdout)}\nhost stderr:\n${outputOf(host.stderr)}`;
  const [, id = ''] = await waitForLine(host.stdout, /^id (\S+)$/, { what: 'the host to start the tree', detail: hostOutput });
  await waitForLine(host.stdout, /^started$/, { what: 'the host to say "started"', detail: hostOutput });
  const cgroup = cgroupOfHost(outputOf(host.stdout));
  if (cgroup) cgroups.add(cgroup);
  return { host, id, hostOutput };
}

/** The tree's cgroup directory, from the host's "cgroup <dir>" line. */
function cgroupOfHost(hostOutput: string): string | undefined {
  return /^cgroup (.+)$/m.exec(hostOutput)?.[1];
}

after(async () => {
  for (const host of hosts) if (host.exitCode === null && host.signalCode === null) host.kill('SIGKILL');
  // Kill leftovers first: a stop() still pending in a failed test settles once its tree is gone.
  await cleanupByMarker({ variable: RUN_VARIABLE, value: RUN });
  await Promise.allSettled(
    [...managers.values()].map(async (m) => withDeadline((await m).shutdown({ timeoutMs: 0 }), { what: 'manager.shutdown() in cleanup', timeoutMs: 5_000 })),
  );
  await cleanupByMarker({ variable: RUN_VARIABLE, value: RUN });
  removeCgroups(cgroups);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('handle.stop() leaves nothing alive', { concurrency: 3 }, () => {
  for (const config of configs) {
    for (const fixture of allFixtures) {
      test(`${config.title}: ${fixture.title}`, async (t) => {
        const skip = skipReasons.get(config);
        if (skip) return t.skip(skip);
        const manager = await managerFor(config);
        const handle = await manager.start({
          command: fixture.command,
          args: fixture.args,
          env: FIXTURE_ENV,
          stdio: fixture.readyLine ? 'pipe' : 'ignore',
          stopTimeoutMs: STOP_TIMEOUT_MS,
          strategy: config.strategy,
        });
        if (handle.cgroup) cgroups.add(handle.cgroup);
        assert.equal(handle.strategy, config.strategy);
        const ready = await awaitFixtureReady(fixture, { value: handle.id }, handle.stdout ?? undefined);
        assert.equal(handle.status().state, 'running');
        if (fixture.holdsPort) assert.equal(await isPortFree(ready.port ?? 0), false, `control: port ${ready.port} must be held while the tree runs`);

        const result = await withDeadline(handle.stop(), { what: `stop() of ${fixture.key}`, timeoutMs: DEADLINE_MS });

        assertNoSurvivors(handle.id, 'right after stop() resolved', ready.processes);
        if (fixture.holdsPort) assert.equal(await isPortFree(ready.port ?? 0), true, `port ${ready.port} is still held after stop()`);
        assert.ok(isFinal(result.status), `stop() resolved with a non-final status: ${JSON.stringify(result.status)}`);
        assert.equal(result.alreadyGone, false);
        assert.equal(result.status.state, 'terminated', `the leader was killed by a signal: ${JSON.stringify(result.status)}`);
        if (fixture.ignoresSigterm) {
          assert.equal(result.forced, true, 'the SIGTERM ignorer can only have been ended by SIGKILL');
          assert.equal(result.status.state === 'terminated' && result.status.signal, 'SIGKILL');
        }
        assert.deepEqual(handle.status(), result.status);
        if (handle.cgroup) assert.equal(existsSync(handle.cgroup), false, `the tree's cgroup ${handle.cgroup} was left behind`);
      });
    }
  }
});

type HostEnd = 'exit' | 'SIGTERM' | 'SIGINT';
const hostEnds: readonly HostEnd[] = ['exit', 'SIGTERM', 'SIGINT'];
const hostFixtures: readonly Fixture[] = [grandchildren, setsidDaemon, sigtermIgnorer, portHolder];

describe('the host ending leaves nothing alive', { concurrency: 4 }, () => {
  for (const end of hostEnds) {
    for (const config of configs) {
      const fixtures = config.options.portable || config.options.forceCgroupKillFallback ? hostFixtures : [...hostFixtures, forkStorm];
      for (const fixture of fixtures) {
        const how = end === 'exit' ? 'process.exit(0)' : end;
        test(`${how}, ${config.title}: ${fixture.title}`, async (t) => {
          const skip = skipReasons.get(config);
          if (skip) return t.skip(skip);
          const logFile = join(tempDir(), 'tree.log');
          const spec = {
            command: fixture.command,
            args: fixture.args,
            env: FIXTURE_ENV,
            logFile,
            stopTimeoutMs: STOP_TIMEOUT_MS,
            strategy: config.strategy,
          };
          const { host, id, hostOutput } = await startHost(config, spec);
          const cgroup = cgroupOfHost(outputOf(host.stdout));
          const ready = await awaitFixtureReady(fixture, { value: id }, fixture.readyLine ? logFile : undefined);
          if (fixture.holdsPort) assert.equal(await isPortFree(ready.port ?? 0), false, `control: port ${ready.port} must be held while the tree runs`);

          if (end === 'exit') host.stdin.write('exit\n');
          else host.kill(end);
          const status = await waitForExit(host, { what: 'the host', timeoutMs: DEADLINE_MS, detail: hostOutput });

          assertNoSurvivors(id, `right after the host ended (${how})`, ready.processes);
          if (fixture.holdsPort) assert.equal(await isPortFree(ready.port ?? 0), true, `port ${ready.port} is still held after the host ended`);
          const expected = end === 'exit' ? { code: 0, signal: null } : { code: null, signal: end };
          assert.deepEqual(status, expected, `the host's exit status must say how it ended\n${hostOutput()}`);
          if (cgroup) assert.equal(existsSync(cgroup), false, `the tree's cgroup ${cgroup} was left behind`);
        });
      }
    }
  }
});

// The same ends, at the earliest moment: start() has resolved, so the tree is
// tend's to stop, but it may not have run a single instruction of its own yet.
// Few at a time: with other tests running in between, the child would mostly
// win the race these tests are about.
describe('stop() right after start() resolved leaves nothing alive', { concurrency: 1 }, () => {
  for (const config of configs) {
    test(`${config.title}: ${grandchildren.title}`, async (t) => {
      const skip = skipReasons.get(config);
      if (skip) return t.skip(skip);
      const manager = await managerFor(config);
      const handle = await manager.start({
        command: grandchildren.command,
        args: grandchildren.args,
        env: FIXTURE_ENV,
        stopTimeoutMs: STOP_TIMEOUT_MS,
        strategy: config.strategy,
      });
      const stopping = handle.stop();
      if (handle.cgroup) cgroups.add(handle.cgroup);
      const result = await withDeadline(stopping, {
        what: 'stop() called right after start()',
        timeoutMs: 3_000,
        detail: () => `status: ${JSON.stringify(handle.status())}\nmarked processes:\n${describeProcesses(survivorsOf(handle.id))}`,
      });
      assertNoSurvivors(handle.id, 'right after stop() resolved');
      assert.ok(isFinal(result.status), `stop() resolved with a non-final status: ${JSON.stringify(result.status)}`);
      if (handle.cgroup) assert.equal(existsSync(handle.cgroup), false, `the tree's cgroup ${handle.cgroup} was left behind`);
    });
  }
});

describe('the host ending right after start() resolved leaves nothing alive', { concurrency: 2 }, () => {
  for (const config of configs) {
    for (const end of ['exit', 'SIGTERM', 'SIGINT'] as const) {
      const how = end === 'exit' ? 'process.exit(0)' : end;
      test(`${how}, ${config.title}: ${grandchildren.title}`, async (t) => {
        const skip = skipReasons.get(config);
        if (skip) return t.skip(skip);
        const spec = { command: grandchildren.command, args: grandchildren.args, env: FIXTURE_ENV, stopTimeoutMs: STOP_TIMEOUT_MS, strategy: config.strategy };
        const { host, id, hostOutput } = await startHost(config, spec, end);
        const status = await waitForExit(host, {
          what: `the host, ended by ${how} right after start()`,
          timeoutMs: 3_000,
          detail: () => `${hostOutput()}\nmarked processes:\n${describeProcesses(survivorsOf(id))}`,
        });
        const expected = end === 'exit' ? { code: 0, signal: null } : { code: null, signal: end };
        assert.deepEqual(status, expected, `the host's exit status must say how it ended\n${hostOutput()}`);
        // A wrapper that had not yet run when the host died learns of it only
        // as it starts (its parent-death check), so allow it a moment to go;
        // anything still alive after that has escaped.
        let left: MarkedProcess[] = [];
        await waitFor(() => (left = survivorsOf(id)).length === 0, {
          what: `every process carrying TEND_ID=${id} to be gone after the host ended`,
          timeoutMs: 2_000,
          detail: () => describeProcesses(left),
        });
        const cgroup = cgroupOfHost(outputOf(host.stdout));
        if (cgroup) assert.equal(existsSync(cgroup), false, `the tree's cgroup ${cgroup} was left behind`);
      });
    }
  }
});

// A program's sockets close only when its last thread has exited; its first
// thread can be a zombie well before that. Repeated, because the window is
// short: a stop that treats such a zombie as gone shows up here as a port
// still held, or as a cgroup that cannot be removed yet. The listener sits
// under a shell, which exits at once on SIGTERM, so the stop is over as soon
// as the listener looks gone.
const PORT_ROUNDS = 15;

describe(`the port is free right after stop(), ${PORT_ROUNDS} rounds`, { concurrency: true }, () => {
  for (const config of nativeStrategies) {
    test(`${config.title}: sh → node listening on a port`, async (t) => {
      const skip = skipReasons.get(config);
      if (skip) return t.skip(skip);
      const manager = await managerFor(config);
      for (let round = 1; round <= PORT_ROUNDS; round++) {
        const handle = await manager.start({
          command: SH,
          args: ['-c', '"$0" "$1" server; :', NODE, fixturePath('port-holder.mjs')],
          env: FIXTURE_ENV,
          stdio: 'pipe',
          stopTimeoutMs: STOP_TIMEOUT_MS,
          strategy: config.strategy,
        });
        if (handle.cgroup) cgroups.add(handle.cgroup);
        assert.ok(handle.stdout, 'stdio "pipe" gives the tree\'s stdout');
        const [, port = '0'] = await waitForLine(handle.stdout, /^port (\d+)$/, { what: `round ${round}: the listener's port` });
        const seen = survivorsOf(handle.id);
        await withDeadline(handle.stop(), { what: `stop() in round ${round}`, timeoutMs: DEADLINE_MS });
        assertNoSurvivors(handle.id, `round ${round}, right after stop() resolved`, seen);
        assert.equal(await isPortFree(Number(port)), true, `round ${round}: port ${port} is still held after stop() resolved`);
        if (handle.cgroup) assert.equal(existsSync(handle.cgroup), false, `round ${round}: the tree's cgroup ${handle.cgroup} was left behind`);
      }
    });
  }
});
