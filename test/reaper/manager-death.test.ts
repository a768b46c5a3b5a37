// A manager that dies without a word (SIGKILL) leaves nothing alive: for every
// containment strategy (forced, and the forced fallbacks) and every fixture,
// a host program using tend is SIGKILLed, alone, at a random moment (in the
// middle of start() included), together with its reaper, or after its reaper
// was killed and replaced. What is alive afterwards is found by the marker in
// /proc, never by trusting tend's own bookkeeping. Every test has its own
// TEND_HOME; every process started here carries TEND_TEST_RUN=<RUN>... and
// `after` SIGKILLs whatever a failing test left.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ProcessManager, type ManagerOptions } from '../../src/index.js';
import { locateCgroup2 } from '../../src/platform/cgroup.js';
import { systemProcessTable } from '../../src/platform/proc-table.js';
import { recoverStateDir } from '../../src/registry/recover.js';
import { strategySkipReason } from '../helpers/capabilities.js';
import { RUN_VARIABLE, cleanupByMarker } from '../helpers/cleanup.js';
import { PATH, allFixtures, awaitFixtureReady, forkStorm, grandchildren, type Fixture } from '../helpers/fixtures.js';
import { ManagerHost, killLeftoverHosts, signalIfSame, waitGone } from '../helpers/manager-host.js';
import { isPortFree } from '../helpers/ports.js';
import { describeProcesses, findMarked, isAlive, procIdentity, survivorsOf, type MarkedProcess } from '../helpers/proc-scan.js';
import { lifecycleLines, makeStateDir, recordDirEntries, recordFiles, removeStateDirs } from '../helpers/state.js';
import { allStrategies, type StrategyConfig } from '../helpers/strategies.js';
import { waitFor, waitForLine } from '../helpers/wait.js';

const RUN = `mdeath-${randomBytes(6).toString('hex')}`;
/** Short, so that the SIGTERM ignorer is SIGKILLed quickly where a stop is involved. */
const STOP_TIMEOUT_MS = 300;
/** How long the reaper (or recovery) gets to leave nothing alive. */
const DEADLINE_MS = 5_000;
const RANDOM_ROUNDS = 15;
const RANDOM_MAX_DELAY_MS = 30;

const location = locateCgroup2();
const ownCgroup = location ? join(location.mount, location.own) : undefined;

interface Config extends StrategyConfig {
  /** Where this configuration's trees get their cgroups: one parent each, so a leftover cgroup is seen and is this test's. */
  readonly cgroupParent: string | undefined;
}

const configs: readonly Config[] = allStrategies.map((c, i) => ({
  ...c,
  cgroupParent: ownCgroup === undefined ? undefined : join(ownCgroup, `tend-test-${RUN}-${i}`),
}));

function optionsOf(config: Config): ManagerOptions {
  return config.cgroupParent === undefined ? { ...config.options } : { ...config.options, cgroupParent: config.cgroupParent };
}

const probeStateDir = makeStateDir('mdeath-probe');
const skipReasons = new Map(
  await Promise.all(configs.map(async (c) => [c, await strategySkipReason(c.strategy, { ...optionsOf(c), stateDir: probeStateDir })] as const)),
);

/** Fixtures a configuration runs: the fork storm only with the native helpers (as in the containment tests). */
function fixturesOf(config: Config): readonly Fixture[] {
  return config.options.portable || config.options.forceCgroupKillFallback ? allFixtures.filter((f) => f !== forkStorm) : allFixtures;
}

/** Sub-cgroups left under a configuration's cgroup parent. */
function cgroupsLeft(config: Config): string[] {
  if (config.cgroupParent === undefined || !existsSync(config.cgroupParent)) return [];
  return readdirSync(config.cgroupParent, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => join(config.cgroupParent ?? '', e.name));
}

after(async () => {
  await killLeftoverHosts();
  await cleanupByMarker({ variable: RUN_VARIABLE, prefix: RUN });
  for (const config of configs) {
    if (config.cgroupParent === undefined || !existsSync(config.cgroupParent)) continue;
    for (const dir of cgroupsLeft(config)) {
      try {
        writeFileSync(join(dir, 'cgroup.kill'), '1');
        await waitFor(() => !/^populated 1$/m.test(readFileSync(join(dir, 'cgroup.events'), 'utf8')), { what: `${dir} to empty`, timeoutMs: 2_000 }).catch(() => undefined);
        rmdirSync(dir);
      } catch {
        /* reported by the test that left it */
      }
    }
    try {
      rmdirSync(config.cgroupParent);
    } catch {
      /* reported by the test that left something in it */
    }
  }
  removeStateDirs();
});

/** The fixture's spec; its output goes to logFile when given (the fixtures that print their readiness need one). */
function specOf(fixture: Fixture, config: Config, logFile: string | undefined, parentDeathSignal: boolean, run = RUN): Record<string, unknown> {
  return {
    command: fixture.command,
    args: fixture.args,
    env: { PATH, [RUN_VARIABLE]: run },
    ...(logFile === undefined ? { stdio: 'ignore' } : { logFile }),
    stopTimeoutMs: STOP_TIMEOUT_MS,
    strategy: config.strategy,
    parentDeathSignal,
  };
}

async function waitNoSurvivors(id: string, seen: readonly MarkedProcess[], when: string): Promise<void> {
  let left: MarkedProcess[] = [];
  await waitFor(() => (left = survivorsOf(id, seen)).length === 0, {
    what: `every process carrying TEND_ID=${id} to be gone ${when}`,
    timeoutMs: DEADLINE_MS,
    detail: () => describeProcesses(left),
  });
}

function assertAllAlive(processes: readonly MarkedProcess[], when: string): void {
  const dead = processes.filter((p) => !isAlive(p.pid, p.startTime));
  assert.equal(dead.length, 0, `${when}: these processes of the tree should still be alive:\n${describeProcesses(dead)}`);
}

/** After the reaper did its work: the next recovery finds the record, nothing alive, and removes it. */
async function assertRecoveryFindsNothingAlive(stateDir: string, id: string): Promise<void> {
  const report = await recoverStateDir({ stateDir, table: systemProcessTable() });
  assert.deepEqual(
    report.trees.map((t) => ({ handle: t.handle, pids: t.pids })),
    [{ handle: id, pids: [] }],
    `recovery after the reaper must find the record of ${id} and nothing of it alive: ${JSON.stringify(report)}`,
  );
  assert.deepEqual(recordFiles(stateDir), [], 'recovery removes the record');
}

describe('SIGKILL of the manager after its tree is up leaves nothing alive', { concurrency: 3 }, () => {
  for (const config of configs) {
    for (const fixture of fixturesOf(config)) {
      for (const parentDeathSignal of [true, false]) {
        test(`${config.title}, parent-death signal ${parentDeathSignal ? 'on' : 'off'}: ${fixture.title}`, async (t) => {
          const skip = skipReasons.get(config);
          if (skip) return t.skip(skip);
          const stateDir = makeStateDir('mdeath');
          const logFile = join(makeStateDir('mdeath-log'), 'tree.log');
          const host = new ManagerHost({ options: optionsOf(config), spec: specOf(fixture, config, logFile, parentDeathSignal) }, stateDir, RUN);
          const reaper = await host.created();
          const { id, cgroup } = await host.started();
          const ready = await awaitFixtureReady(fixture, { value: id }, fixture.readyLine ? logFile : undefined);
          if (fixture.holdsPort) assert.equal(await isPortFree(ready.port ?? 0), false, `control: port ${ready.port} must be held while the tree runs`);
          assert.deepEqual(recordFiles(stateDir), [`${id}.json`], 'the record is written while the tree runs');

          host.kill('SIGKILL');
          assert.deepEqual(await host.exited(), { code: null, signal: 'SIGKILL' });

          await waitNoSurvivors(id, ready.processes, 'after the manager was SIGKILLed');
          if (fixture.holdsPort) assert.equal(await isPortFree(ready.port ?? 0), true, `port ${ready.port} is still held after the manager's death`);
          await waitGone(reaper, 'the reaper, done with its cleanup', DEADLINE_MS);
          if (cgroup) assert.equal(existsSync(cgroup), false, `the tree's cgroup ${cgroup} was left behind`);
          await assertRecoveryFindsNothingAlive(stateDir, id);
        });
      }
    }
  }
});

// A host starts trees one after the other and is SIGKILLed 0-30 ms after its
// manager exists: mostly in the middle of a start (record written or not,
// reaper told or not, child forked or not). Whatever had begun must be
// cleaned, by the reaper or by the next recovery; whatever had not leaves
// nothing. Odd rounds switch the parent-death signal off, leaving the reaper
// and recovery alone on the job. One at a time: a concurrent test's scans of
// /proc would block this process's event loop and delay every kill past the
// moment it was meant for.
describe(`SIGKILL of the manager at a random moment, ${RANDOM_ROUNDS} rounds`, { concurrency: 1 }, () => {
  configs.forEach((config, index) => {
    test(`${config.title}: a host starting ${grandchildren.title} in a loop`, async (t) => {
      const skip = skipReasons.get(config);
      if (skip) return t.skip(skip);
      let started = 0;
      let recorded = 0;
      let midStart = 0;
      const probes = new Set<string>();
      const escapedReaper: string[] = [];
      for (let round = 0; round < RANDOM_ROUNDS; round++) {
        const run = `${RUN}-random${index}-${round}`;
        const stateDir = makeStateDir('mdeath-random');
        const spec = specOf(grandchildren, config, undefined, round % 2 === 0, run);
        const host = new ManagerHost({ options: optionsOf(config), loop: { spec, max: 20 } }, stateDir, RUN);
        const reaper = await host.created();
        const wait = randomInt(RANDOM_MAX_DELAY_MS + 1);
        // The moment of death is what is under test: a random delay, not a wait for something.
        await delay(wait);
        host.kill('SIGKILL');
        await host.exited();
        const ids = host.ids();
        await waitGone(reaper, `round ${round}: the reaper, done with its cleanup`, DEADLINE_MS);
        const afterReaper = findMarked({ variable: RUN_VARIABLE, value: run });
        if (afterReaper.length > 0) escapedReaper.push(`round ${round} (${wait} ms):\n${describeProcesses(afterReaper)}`);

        const report = await recoverStateDir({ stateDir, table: systemProcessTable() });
        let left: MarkedProcess[] = [];
        await waitFor(() => (left = findMarked({ variable: RUN_VARIABLE, value: run })).length === 0, {
          what: `round ${round} (killed ${wait} ms after create): every process of the run to be gone after the reaper and recovery`,
          timeoutMs: DEADLINE_MS,
          detail: () => `${describeProcesses(left)}\nrecovery: ${JSON.stringify(report)}\n${host.output()}`,
        });
        // Every handle the host printed had its record written first; recovery must have seen each.
        const handled = new Set(report.trees.map((tree) => tree.handle));
        for (const id of ids) assert.ok(handled.has(id), `round ${round}: the record of started tree ${id} was not found by recovery: ${JSON.stringify(report)}`);
        assert.deepEqual(recordFiles(stateDir), [], `round ${round}: recovery leaves no record behind`);
        assert.deepEqual(
          recordDirEntries(stateDir).filter((name) => name.includes('.claimed-')),
          [],
          `round ${round}: no claimed record is left behind`,
        );
        // A host killed while it probes the cgroup parent (its first start) can leave
        // the empty probe cgroup: no process, but noted (see the diagnostic).
        const leftCgroups = cgroupsLeft(config);
        for (const dir of leftCgroups) if (/\/probe-[^/]*$/.test(dir)) probes.add(dir);
        assert.deepEqual(
          leftCgroups.filter((dir) => !/\/probe-[^/]*$/.test(dir)),
          [],
          `round ${round} (killed ${wait} ms after create): no tree's cgroup is left under the cgroup parent`,
        );
        started += ids.length;
        recorded += report.trees.length;
        if (report.trees.length > ids.length) midStart++;
      }
      t.diagnostic(`${midStart} of ${RANDOM_ROUNDS} rounds killed the host in the middle of a start (record written, start() not resolved); ${started} start() calls had completed, recovery found ${recorded} records`);
      if (probes.size > 0) t.diagnostic(`empty detection probe cgroups left by a host killed while probing: ${[...probes].join(', ')}`);
      if (escapedReaper.length > 0) t.diagnostic(`left for recovery by the reaper in ${escapedReaper.length} round(s):\n${escapedReaper.join('\n')}`);
    });
  });
});

// The reaper is stopped first (SIGSTOP), so that it cannot act when the
// manager dies, then both are SIGKILLed: only a later recovery can clean up.
// The parent-death signal is off, so that the whole tree outlives them with
// every strategy (a control checks that it does).
describe('SIGKILL of the manager and its reaper together: the next manager recovers', { concurrency: 3 }, () => {
  for (const config of configs) {
    for (const fixture of fixturesOf(config)) {
      test(`${config.title}: ${fixture.title}`, async (t) => {
        const skip = skipReasons.get(config);
        if (skip) return t.skip(skip);
        const stateDir = makeStateDir('mdeath-both');
        const logFile = join(makeStateDir('mdeath-log'), 'tree.log');
        const host = new ManagerHost({ options: optionsOf(config), spec: specOf(fixture, config, logFile, false) }, stateDir, RUN);
        const reaper = await host.created();
        const { id, cgroup } = await host.started();
        const ready = await awaitFixtureReady(fixture, { value: id }, fixture.readyLine ? logFile : undefined);

        assert.ok(signalIfSame(reaper, 'SIGSTOP'), 'the reaper is running');
        await waitFor(() => procIdentity(reaper.pid)?.state === 'T', { what: 'the reaper to be stopped' });
        host.kill('SIGKILL');
        await host.exited();
        assert.ok(signalIfSame(reaper, 'SIGKILL'), 'the stopped reaper is still there to be killed');
        await waitGone(reaper, 'the SIGKILLed reaper');
        assertAllAlive(ready.processes, 'control: with its manager and reaper dead and no parent-death signal, nothing stopped the tree');
        if (fixture.holdsPort) assert.equal(await isPortFree(ready.port ?? 0), false, `control: port ${ready.port} is still held before recovery`);

        const manager = await ProcessManager.create({ ...optionsOf(config), stateDir, handleSignals: false });
        try {
          const report = manager.recovery;
          assert.ok(report, 'create() ran recovery');
          assert.equal(report.trees.length, 1, `recovery handles exactly the one stale tree: ${JSON.stringify(report)}`);
          const tree = report.trees[0];
          assert.equal(tree?.handle, id);
          const reported = new Set(tree?.pids);
          const missing = ready.processes.filter((p) => !reported.has(p.pid));
          assert.equal(missing.length, 0, `the report lists every pid of the tree; missing:\n${describeProcesses(missing)}\nreport: ${JSON.stringify(report)}`);
          const left = survivorsOf(id, ready.processes);
          assert.equal(left.length, 0, `right after recovery, processes carrying TEND_ID=${id} survived:\n${describeProcesses(left)}`);
          if (fixture.holdsPort) assert.equal(await isPortFree(ready.port ?? 0), true, `port ${ready.port} is still held after recovery`);
          assert.deepEqual(recordFiles(stateDir), [], 'recovery removes the record');
          if (cgroup) {
            assert.equal(tree?.cgroupRemoved, true, 'recovery reports the cgroup removed');
            assert.equal(existsSync(cgroup), false, `the tree's cgroup ${cgroup} was left behind`);
          }
          const cleanups = lifecycleLines(stateDir).filter((l) => l.event === 'orphan-cleanup' && l.handle === id);
          const logged = new Set(cleanups.map((l) => l.pid));
          for (const p of ready.processes) assert.ok(logged.has(p.pid), `lifecycle.jsonl has an orphan-cleanup line for pid ${p.pid}`);
        } finally {
          await manager.shutdown();
        }
      });
    }
  }
});

// The reaper dies (SIGKILL) while the manager lives: the manager starts a new
// one and tells it every tree again. The parent-death signal is off, so that
// with every strategy only the new reaper can clean up when the manager dies.
describe('SIGKILL of the reaper alone: the manager replaces it, and the new one cleans up', { concurrency: 3 }, () => {
  for (const config of configs) {
    for (const fixture of fixturesOf(config)) {
      test(`${config.title}: ${fixture.title}`, async (t) => {
        const skip = skipReasons.get(config);
        if (skip) return t.skip(skip);
        const stateDir = makeStateDir('mdeath-reaper');
        const logFile = join(makeStateDir('mdeath-log'), 'tree.log');
        const host = new ManagerHost({ options: optionsOf(config), spec: specOf(fixture, config, logFile, false) }, stateDir, RUN);
        const reaper = await host.created();
        const { id, cgroup } = await host.started();
        const ready = await awaitFixtureReady(fixture, { value: id }, fixture.readyLine ? logFile : undefined);

        assert.ok(signalIfSame(reaper, 'SIGKILL'), 'the reaper is running');
        await waitForLine(host.child.stdout, /^warning /, { what: "the manager's warning about its reaper", detail: host.output });
        const newPid = await waitFor(() => host.reaperPids().find((pid) => pid !== reaper.pid), {
          what: 'the host to report a new reaper pid',
          detail: host.output,
        });
        const newReaper = procIdentity(newPid);
        assert.ok(newReaper && isAlive(newReaper.pid, newReaper.startTime), `the new reaper ${newPid} runs`);
        await waitGone(reaper, 'the SIGKILLed reaper');
        const restarts = lifecycleLines(stateDir).filter((l) => l.event === 'reaper-restart');
        assert.equal(restarts.length, 1, `lifecycle.jsonl has one reaper-restart line: ${JSON.stringify(restarts)}`);
        assert.equal(restarts[0]?.pid, newPid, 'the reaper-restart line names the new reaper');
        assertAllAlive(ready.processes, 'control: the death of the reaper alone must not touch the tree');

        host.kill('SIGKILL');
        await host.exited();
        await waitNoSurvivors(id, ready.processes, 'after the manager was SIGKILLed (only the new reaper could clean up)');
        if (fixture.holdsPort) assert.equal(await isPortFree(ready.port ?? 0), true, `port ${ready.port} is still held after the manager's death`);
        await waitGone(newReaper, 'the new reaper, done with its cleanup', DEADLINE_MS);
        if (cgroup) assert.equal(existsSync(cgroup), false, `the tree's cgroup ${cgroup} was left behind`);
        await assertRecoveryFindsNothingAlive(stateDir, id);
      });
    }
  }
});

// Negative control: the tests above would see a leak. Without a reaper and
// without a parent-death signal, nothing can act at the manager's death, and
// the tree is found alive; then recovery, the remaining line of defence, ends it.
describe('control: without a reaper, SIGKILL of the manager leaves the tree to recovery', { concurrency: 3 }, () => {
  for (const config of configs.slice(0, 3)) {
    test(`${config.title}: ${grandchildren.title}`, async (t) => {
      const skip = skipReasons.get(config);
      if (skip) return t.skip(skip);
      const stateDir = makeStateDir('mdeath-control');
      const host = new ManagerHost({ options: { ...optionsOf(config), reaper: false }, spec: specOf(grandchildren, config, undefined, false) }, stateDir, RUN);
      await waitForLine(host.child.stdout, /^created$/, { what: 'the host to create its manager', detail: host.output });
      assert.deepEqual(host.reaperPids(), [], 'no reaper was started');
      const { id } = await host.started();
      const ready = await awaitFixtureReady(grandchildren, { value: id }, undefined);
      host.kill('SIGKILL');
      await host.exited();
      assertAllAlive(ready.processes, 'without a reaper the tree must outlive its manager (else the tests above prove nothing)');
      const report = await recoverStateDir({ stateDir, table: systemProcessTable() });
      assert.deepEqual(report.trees.map((tree) => tree.handle), [id]);
      await waitNoSurvivors(id, ready.processes, 'after recovery');
    });
  }
});
