// The supervisor in-process, against real process trees: starting and
// stopping whole trees, restart policies and their backoff, readiness,
// dependencies and stop order, the concurrency limit, declared ports, kill-all,
// unresponsiveness, logs and PID files, and the store. Every wait is for an
// event or a condition with a deadline; after each test nothing the services
// started may be alive.
import { after, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ProcessManager } from '../../src/index.js';
import { isTendError, type ErrorCode } from '../../src/core/errors.js';
import { systemProcessTable } from '../../src/platform/proc-table.js';
import type { ServiceConfig } from '../../src/service/definition.js';
import type { ServiceInfo, ServiceState } from '../../src/supervisor/service-info.js';
import { ServiceStore, type StoredOutcome } from '../../src/supervisor/service-store.js';
import { Supervisor, type SupervisorOptions } from '../../src/supervisor/supervisor.js';
import { RUN_VARIABLE, cleanupByMarker } from '../helpers/cleanup.js';
import { NODE, PATH, SH } from '../helpers/fixtures.js';
import { isPortFree } from '../helpers/ports.js';
import { describeProcesses, findMarked, procIdentity, survivorsOf, type MarkedProcess } from '../helpers/proc-scan.js';
import { SLEEP, makeStateDir, removeStateDirs } from '../helpers/state.js';
import { waitFor, waitForExit, waitForLineInFile, withDeadline } from '../helpers/wait.js';

const RUN = `supervisor-${randomBytes(6).toString('hex')}`;
/** Processes the tests start themselves (foreign port holders): not the services'. */
const FOREIGN_RUN = `${RUN}-foreign`;
/** Each service's processes carry TEND_TEST_SERVICE=<tag> too, so a tree is found even before its handle is known. */
const TAG_VARIABLE = 'TEND_TEST_SERVICE';
const DEADLINE_MS = 15_000;
const NICE = ['/usr/bin/nice', '/bin/nice'].find((p) => existsSync(p)) ?? 'nice';

after(async () => {
  await cleanupByMarker({ variable: RUN_VARIABLE, value: RUN });
  await cleanupByMarker({ variable: RUN_VARIABLE, value: FOREIGN_RUN });
  removeStateDirs();
});

// Nothing a service started outlives its test.
afterEach(() => {
  const left = findMarked({ variable: RUN_VARIABLE, value: RUN });
  assert.equal(left.length, 0, `processes of the test's services survived it:\n${describeProcesses(left)}`);
});

let tagCounter = 0;

/** A tag unique to one service of one test. */
function newTag(name: string): string {
  return `${RUN}-${name}-${++tagCounter}`;
}

/** A complete definition: a sleep, restart never, pgroup; `overrides` on top. */
function svc(name: string, overrides: Partial<ServiceConfig> & { tag?: string } = {}): ServiceConfig {
  const { tag, ...rest } = overrides;
  return {
    name,
    command: SLEEP,
    args: ['1000'],
    cwd: '/tmp',
    env: { PATH, [RUN_VARIABLE]: RUN, [TAG_VARIABLE]: tag ?? newTag(name) },
    inheritEnv: false,
    log: undefined,
    restart: 'never',
    restartLimit: undefined,
    ready: undefined,
    ports: [],
    dependsOn: [],
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 3000,
    strategy: 'pgroup',
    exemptFromLimit: false,
    unresponsive: undefined,
    ...rest,
  };
}

function tagOf(definition: ServiceConfig): string {
  const tag = definition.env[TAG_VARIABLE];
  assert.ok(tag);
  return tag;
}

function byTag(definition: ServiceConfig): MarkedProcess[] {
  return findMarked({ variable: TAG_VARIABLE, value: tagOf(definition) });
}

interface StateEvent {
  readonly name: string;
  readonly state: ServiceState;
  readonly reason: string | null;
}

interface Context {
  readonly supervisor: Supervisor;
  readonly manager: ProcessManager;
  readonly stateDir: string;
  /** Every 'state' event, in order, with the reason at the time. */
  readonly events: StateEvent[];
  readonly warnings: string[];
}

/** A fresh state dir, manager and supervisor for `body`; closed (forgetting) and shut down after, then checked for survivors. */
async function withSupervisor(label: string, options: Partial<Omit<SupervisorOptions, 'manager' | 'table'>>, body: (ctx: Context) => Promise<void>): Promise<void> {
  const stateDir = makeStateDir(`sup-${label}`);
  const manager = await ProcessManager.create({ stateDir, handleSignals: false });
  const warnings: string[] = [];
  const supervisor = new Supervisor({ manager, table: systemProcessTable(), warn: (m) => warnings.push(m), ...options });
  const events: StateEvent[] = [];
  const handles = new Set<string>();
  supervisor.on('state', (name, state) => {
    let reason: string | null = null;
    if (supervisor.has(name)) {
      const info = supervisor.info(name);
      reason = info.reason;
      if (info.handle) handles.add(info.handle);
    }
    events.push({ name, state, reason });
  });
  try {
    await body({ supervisor, manager, stateDir, events, warnings });
  } finally {
    for (const name of supervisor.names()) {
      const handle = supervisor.info(name).handle;
      if (handle) handles.add(handle);
    }
    await withDeadline(supervisor.close({ forget: true }), { what: 'supervisor.close()', timeoutMs: DEADLINE_MS });
    await withDeadline(manager.shutdown(), { what: 'manager.shutdown()', timeoutMs: DEADLINE_MS });
  }
  for (const handle of handles) {
    const survivors = survivorsOf(handle);
    assert.equal(survivors.length, 0, `processes of ${handle} survived close():\n${describeProcesses(survivors)}`);
  }
}

/** Resolves with the service's info once `accept` holds for it: now, or after a 'state' event. */
function waitForService(supervisor: Supervisor, name: string, accept: (info: ServiceInfo) => boolean, what: string, timeoutMs = DEADLINE_MS): Promise<ServiceInfo> {
  let onState: ((changed: string) => void) | undefined;
  const waiting = new Promise<ServiceInfo>((resolve) => {
    const check = (): boolean => {
      const info = supervisor.info(name);
      if (!accept(info)) return false;
      resolve(info);
      return true;
    };
    onState = (changed: string): void => {
      if (changed === name && check() && onState) supervisor.off('state', onState);
    };
    if (!check()) supervisor.on('state', onState);
  });
  return withDeadline(waiting, { what: `${name}: ${what}`, timeoutMs, detail: () => `info: ${JSON.stringify(supervisor.info(name))}` }).finally(() => {
    if (onState) supervisor.off('state', onState);
  });
}

function waitForState(supervisor: Supervisor, name: string, state: ServiceState, timeoutMs = DEADLINE_MS): Promise<ServiceInfo> {
  return waitForService(supervisor, name, (i) => i.state === state, `state ${state}`, timeoutMs);
}

/** Marks a promise awaited later as handled now, so a rejection before the test awaits it is not an unhandled one. */
function pending<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/** Polls until the service has spawned its command (no event marks that: 'starting' comes before the spawn). */
function waitForSpawn(supervisor: Supervisor, name: string): Promise<ServiceInfo> {
  let info: ServiceInfo | undefined;
  return waitFor(() => ((info = supervisor.info(name)).pid !== null ? info : undefined), {
    what: `${name} to be spawned`,
    timeoutMs: DEADLINE_MS,
    detail: () => JSON.stringify(info),
  });
}

/** Asserts `promise` rejects with a TendError of `code`, and returns it. */
async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, what: string) {
  let outcome: unknown;
  try {
    outcome = await withDeadline(promise, { what, timeoutMs: DEADLINE_MS });
  } catch (error) {
    assert.ok(isTendError(error, code), `${what}: expected ${code}, got ${String(error)}`);
    return error;
  }
  assert.fail(`${what}: expected ${code}, but it resolved with ${JSON.stringify(outcome)}`);
}

/** Waits until the tagged tree has `count` processes named `comm`. */
function awaitTree(definition: ServiceConfig, comm: string, count: number): Promise<MarkedProcess[]> {
  let seen: MarkedProcess[] = [];
  return waitFor(() => ((seen = byTag(definition)).filter((p) => p.comm === comm).length >= count ? seen : undefined), {
    what: `${count} ${comm} of ${definition.name}`,
    timeoutMs: DEADLINE_MS,
    detail: () => describeProcesses(seen),
  });
}

function assertGone(processes: readonly MarkedProcess[], what: string): void {
  const alive = processes.filter((p) => {
    const id = procIdentity(p.pid);
    return id !== undefined && id.startTime === p.startTime && id.state !== 'Z' && id.state !== 'X';
  });
  assert.equal(alive.length, 0, `${what}: still alive:\n${describeProcesses(alive)}`);
}

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

/** Node code for a TCP server on 127.0.0.1:port that prints "listening" once it is. */
function serverCode(port: number, onConnection = 'c.destroy()'): string {
  return `const s = require('net').createServer((c) => { ${onConnection}; }); s.listen(${port}, '127.0.0.1', () => console.log('listening')); setInterval(() => {}, 1 << 30);`;
}

/** A process of the test's own (not tend's) listening on `port`; resolves once it listens. */
async function startForeignListener(port: number): Promise<ChildProcess> {
  const child = spawn(NODE, ['-e', serverCode(port)], { stdio: ['ignore', 'pipe', 'inherit'], env: { PATH, [RUN_VARIABLE]: FOREIGN_RUN } });
  child.on('error', () => undefined);
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await waitFor(() => out.includes('listening'), { what: `the foreign listener on ${port}`, timeoutMs: DEADLINE_MS, detail: () => out });
  return child;
}

function statesOf(events: readonly StateEvent[], name: string): ServiceState[] {
  return events.filter((e) => e.name === name).map((e) => e.state);
}

function indexOf(events: readonly StateEvent[], name: string, state: ServiceState, from = 0): number {
  return events.findIndex((e, i) => i >= from && e.name === name && e.state === state);
}

/** A file that does not exist yet: services that wait for it exit (or listen) only once the test creates it. */
function triggerPath(ctx: Context, label: string): string {
  return join(ctx.stateDir, `trigger-${label}`);
}

/** sh code that polls until `file` exists. */
function waitForFileCode(file: string): string {
  return `while [ ! -e '${file}' ]; do sleep 0.02; done`;
}

/**
 * A node service that, once SIGTERMed, exits only when `trigger` exists: its
 * stop waits until the test lets it end. Ready once its SIGTERM handler is in place.
 */
function slowStop(name: string, trigger: string): ServiceConfig {
  const code = `const fs = require('fs'); process.on('SIGTERM', () => { setInterval(() => { if (fs.existsSync(${JSON.stringify(trigger)})) process.exit(0); }, 20); }); console.log('armed'); setInterval(() => {}, 1 << 30);`;
  return svc(name, { command: NODE, args: ['-e', code], ready: { log: '^armed$', timeoutMs: DEADLINE_MS }, stopTimeoutMs: DEADLINE_MS });
}

/** Settles when `promise` does, within the deadline, with its outcome (a rejection as the error). */
async function settled<T>(promise: Promise<T>, what: string): Promise<{ value: T } | { error: unknown }> {
  return withDeadline(
    promise.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    { what, timeoutMs: DEADLINE_MS },
  );
}

describe('Supervisor', () => {
  test('start: running, with pid, pids and handle in info(); a second start is alreadyRunning', async () => {
    await withSupervisor('start', {}, async ({ supervisor, events }) => {
      const web = svc('web');
      supervisor.define(web);
      assert.equal(supervisor.info('web').state, 'stopped');
      const report = await withDeadline(supervisor.start('web'), { what: 'start web', timeoutMs: DEADLINE_MS });
      assert.equal(report.alreadyRunning, false);
      assert.deepEqual(report.freed, []);
      assert.equal(report.service.state, 'running');
      const info = supervisor.info('web');
      assert.equal(info.state, 'running');
      assert.equal(typeof info.pid, 'number');
      assert.ok(info.pids.includes(info.pid as number), `pids ${JSON.stringify(info.pids)} should include pid ${info.pid}`);
      assert.equal(typeof info.handle, 'string');
      assert.equal(info.strategy, 'pgroup');
      assert.equal(info.ready, null);
      assert.equal(info.restarts, 0);
      const marked = findMarked({ value: info.handle as string });
      const sleep = marked.find((p) => p.pid === info.pid);
      assert.ok(sleep, `pid ${info.pid} should carry TEND_ID=${info.handle}:\n${describeProcesses(marked)}`);
      assert.equal(sleep.comm, 'sleep');
      assert.deepEqual(statesOf(events, 'web'), ['stopped', 'queued', 'starting', 'running']);

      const again = await supervisor.start('web');
      assert.equal(again.alreadyRunning, true);
      assert.equal(supervisor.info('web').pid, info.pid);
    });
  });

  test('stop: the whole tree (sh -c "sleep & sleep") is gone, the service stopped', async () => {
    await withSupervisor('stop', {}, async ({ supervisor }) => {
      const tree = svc('tree', { command: SH, args: ['-c', `${SLEEP} 1000 & ${SLEEP} 1000`] });
      supervisor.define(tree);
      await supervisor.start('tree');
      const seen = await awaitTree(tree, 'sleep', 2);
      const handle = supervisor.info('tree').handle as string;
      assert.ok(seen.every((p) => findMarked({ value: handle }).some((q) => q.pid === p.pid)));
      const [info] = await withDeadline(supervisor.stop(['tree']), { what: 'stop tree', timeoutMs: DEADLINE_MS });
      assert.equal(info?.state, 'stopped');
      assert.equal(info?.pid, null);
      assert.deepEqual(info?.pids, []);
      assert.equal(info?.handle, null);
      assertGone(seen, 'the tree after stop');
      assert.deepEqual(survivorsOf(handle, seen), []);
    });
  });

  describe('restart policies', () => {
    test('never: an exit is final (exited, with the code), no restart', async () => {
      await withSupervisor('never', {}, async (ctx) => {
        const trigger = triggerPath(ctx, 'never');
        ctx.supervisor.define(svc('job', { command: SH, args: ['-c', `${waitForFileCode(trigger)}; exit 3`], restart: 'never' }));
        await ctx.supervisor.start('job');
        writeFileSync(trigger, '');
        const info = await waitForState(ctx.supervisor, 'job', 'exited');
        assert.match(info.reason ?? '', /exit code 3/);
        assert.match(info.reason ?? '', /policy never/);
        assert.equal(info.restarts, 0);
        assert.equal(info.lastExit?.code, 3);
        assert.equal(info.pid, null);
        assert.ok(!statesOf(ctx.events, 'job').includes('backoff'));
      });
    });

    test('on-failure: a clean exit is "exited", not restarted', async () => {
      await withSupervisor('onfail-clean', {}, async (ctx) => {
        const trigger = triggerPath(ctx, 'clean');
        ctx.supervisor.define(
          svc('job', { command: SH, args: ['-c', `${waitForFileCode(trigger)}; exit 0`], restart: 'on-failure', restartLimit: { maxRestarts: 5, backoffMs: 10, maxBackoffMs: 10 } }),
        );
        await ctx.supervisor.start('job');
        writeFileSync(trigger, '');
        const info = await waitForState(ctx.supervisor, 'job', 'exited');
        assert.match(info.reason ?? '', /exited cleanly/);
        assert.equal(info.restarts, 0);
        assert.equal(info.lastExit?.code, 0);
        assert.deepEqual(statesOf(ctx.events, 'job'), ['stopped', 'queued', 'starting', 'running', 'exited']);
      });
    });

    test('on-failure: a failing exit is restarted, backoff growing, then failed after maxRestarts with a reason', async () => {
      await withSupervisor('onfail', {}, async (ctx) => {
        const trigger = triggerPath(ctx, 'fail');
        ctx.supervisor.define(
          svc('job', { command: SH, args: ['-c', `${waitForFileCode(trigger)}; exit 4`], restart: 'on-failure', restartLimit: { maxRestarts: 3, backoffMs: 40, maxBackoffMs: 100 } }),
        );
        await ctx.supervisor.start('job');
        writeFileSync(trigger, '');
        const info = await waitForState(ctx.supervisor, 'job', 'failed');
        assert.match(info.reason ?? '', /gave up after 3 restarts in a row: last exit code 4/);
        assert.equal(info.restarts, 3);
        assert.equal(info.pid, null);
        const backoffs = ctx.events.filter((e) => e.name === 'job' && e.state === 'backoff').map((e) => e.reason);
        assert.deepEqual(backoffs, ['exit code 4; restart 1 in 40 ms', 'exit code 4; restart 2 in 80 ms', 'exit code 4; restart 3 in 100 ms']);
        assert.equal(ctx.events.filter((e) => e.name === 'job' && e.state === 'starting').length, 4, 'the first start and three restarts');
      });
    });

    test('always: even a clean exit is restarted, each run a new process', async () => {
      await withSupervisor('always', {}, async (ctx) => {
        const trigger = triggerPath(ctx, 'always');
        const pidsFile = join(ctx.stateDir, 'pids');
        ctx.supervisor.define(
          svc('job', {
            command: SH,
            args: ['-c', `echo $$ >> '${pidsFile}'; ${waitForFileCode(trigger)}; exit 0`],
            restart: 'always',
            restartLimit: { maxRestarts: 2, backoffMs: 10, maxBackoffMs: 1000 },
          }),
        );
        await ctx.supervisor.start('job');
        writeFileSync(trigger, '');
        const info = await waitForState(ctx.supervisor, 'job', 'failed');
        assert.match(info.reason ?? '', /gave up after 2 restarts in a row: last exit code 0/);
        assert.equal(info.restarts, 2);
        const backoffs = ctx.events.filter((e) => e.name === 'job' && e.state === 'backoff').map((e) => e.reason);
        assert.deepEqual(backoffs, ['exit code 0; restart 1 in 10 ms', 'exit code 0; restart 2 in 20 ms']);
        const pids = readFileSync(pidsFile, 'utf8').trim().split('\n');
        assert.equal(pids.length, 3, `three runs: ${pids.join(', ')}`);
        assert.equal(new Set(pids).size, 3, `each run a new process: ${pids.join(', ')}`);
      });
    });

    test('a start by hand after failed starts the count over', async () => {
      await withSupervisor('restart-again', {}, async (ctx) => {
        const trigger = triggerPath(ctx, 'again');
        ctx.supervisor.define(svc('job', { command: SH, args: ['-c', `${waitForFileCode(trigger)}; exit 1`], restart: 'always', restartLimit: { maxRestarts: 1, backoffMs: 5, maxBackoffMs: 5 } }));
        await ctx.supervisor.start('job');
        writeFileSync(trigger, '');
        await waitForState(ctx.supervisor, 'job', 'failed');
        assert.equal(ctx.supervisor.info('job').restarts, 1);
        const from = ctx.events.length;
        // It exits at once now (the trigger exists): the start may see it already gone.
        await ctx.supervisor.start('job').catch(() => undefined);
        const info = await waitForService(ctx.supervisor, 'job', (i) => i.state === 'failed' && ctx.events.length > from, 'failed again');
        assert.equal(info.restarts, 1);
        assert.equal(ctx.events.slice(from).filter((e) => e.name === 'job' && e.state === 'backoff').length, 1);
      });
    });
  });

  describe('readiness', () => {
    test('tcp: starting until the port accepts, then running and ready', async () => {
      await withSupervisor('ready-tcp', {}, async (ctx) => {
        const port = await freePort();
        const trigger = triggerPath(ctx, 'listen');
        const code = `const fs = require('fs'); const t = setInterval(() => { if (fs.existsSync(${JSON.stringify(trigger)})) { clearInterval(t); ${serverCode(port)} } }, 20);`;
        ctx.supervisor.define(svc('web', { command: NODE, args: ['-e', code], ready: { tcp: port, timeoutMs: DEADLINE_MS } }));
        const starting = pending(ctx.supervisor.start('web'));
        const spawned = await waitForSpawn(ctx.supervisor, 'web');
        assert.equal(spawned.state, 'starting');
        assert.equal(spawned.ready, false);
        writeFileSync(trigger, '');
        const report = await withDeadline(starting, { what: 'start web', timeoutMs: DEADLINE_MS });
        assert.equal(report.service.state, 'running');
        assert.equal(report.service.ready, true);
        assert.equal(await isPortFree(port), false);
      });
    });

    test('tcp timeout: SERVICE_NOT_READY, state failed, the whole tree stopped', async () => {
      await withSupervisor('ready-timeout', {}, async (ctx) => {
        const port = await freePort();
        const pidsFile = join(ctx.stateDir, 'pids');
        const slow = svc('slow', { command: SH, args: ['-c', `echo $$ > '${pidsFile}'; ${SLEEP} 1000 & echo $! >> '${pidsFile}'; ${SLEEP} 1000`], ready: { tcp: port, timeoutMs: 1500 } });
        ctx.supervisor.define(slow);
        const error = await rejectsWith(ctx.supervisor.start('slow'), 'SERVICE_NOT_READY', 'start slow');
        assert.match(error.message, new RegExp(`tcp 127\\.0\\.0\\.1:${port}`));
        const info = ctx.supervisor.info('slow');
        assert.equal(info.state, 'failed');
        assert.match(info.reason ?? '', /^not ready: /);
        assert.equal(info.pid, null);
        assert.equal(info.ready, false);
        const pids = readFileSync(pidsFile, 'utf8').trim().split('\n').map(Number);
        assert.equal(pids.length, 2, 'the shell and its background sleep had started');
        for (const pid of pids) {
          const id = procIdentity(pid);
          assert.ok(id === undefined || id.state === 'Z', `pid ${pid} is still alive (${id?.state})`);
        }
        assert.deepEqual(byTag(slow), []);
        // Not restarted: a readiness failure is not a crash.
        assert.ok(!statesOf(ctx.events, 'slow').includes('backoff'));
      });
    });

    test('log: a regex on the service output; a line that never comes fails with the last line seen', async () => {
      await withSupervisor('ready-log', {}, async ({ supervisor }) => {
        supervisor.define(svc('logger', { command: SH, args: ['-c', `echo booting; echo 'listening on 4321'; exec ${SLEEP} 1000`], ready: { log: 'listening on (\\d+)$', timeoutMs: DEADLINE_MS } }));
        const report = await supervisor.start('logger');
        assert.equal(report.service.state, 'running');
        assert.equal(report.service.ready, true);

        supervisor.define(svc('mute', { command: SH, args: ['-c', `echo booting; echo 'listening on port'; exec ${SLEEP} 1000`], ready: { log: 'listening on (\\d+)$', timeoutMs: 1000 } }));
        const error = await rejectsWith(supervisor.start('mute'), 'SERVICE_NOT_READY', 'start mute');
        assert.match(error.message, /2 line\(s\) seen, the last \\?"listening on port\\?"/);
        assert.equal(supervisor.info('mute').state, 'failed');
        assert.equal(supervisor.info('logger').state, 'running');
      });
    });
    test('a service that exits before it is ready: SERVICE_START_FAILED naming it, not the readiness error', async () => {
      await withSupervisor('ready-exit', {}, async ({ supervisor }) => {
        const port = await freePort();
        supervisor.define(svc('quitter', { command: SH, args: ['-c', 'exit 3'], ready: { tcp: port, timeoutMs: DEADLINE_MS } }));
        const error = await rejectsWith(supervisor.start('quitter'), 'SERVICE_START_FAILED', 'start quitter');
        assert.equal(error.details.name, 'quitter');
        assert.match(error.message, /"quitter"/);
        assert.match(error.message, /exit code 3/);
        const info = supervisor.info('quitter');
        assert.equal(info.state, 'exited');
        assert.equal(info.lastExit?.code, 3);
      });
    });
  });

  describe('dependencies', () => {
    test('a dependent is spawned only once its dependency runs and is ready', async () => {
      await withSupervisor('deps', {}, async (ctx) => {
        const port = await freePort();
        const trigger = triggerPath(ctx, 'db');
        const code = `const fs = require('fs'); const t = setInterval(() => { if (fs.existsSync(${JSON.stringify(trigger)})) { clearInterval(t); ${serverCode(port)} } }, 20);`;
        ctx.supervisor.define(svc('db', { command: NODE, args: ['-e', code], ready: { tcp: port, timeoutMs: DEADLINE_MS } }));
        const app = svc('app', { dependsOn: ['db'] });
        ctx.supervisor.define(app);
        const starting = pending(ctx.supervisor.start('app'));
        const db = await waitForSpawn(ctx.supervisor, 'db');
        assert.equal(db.state, 'starting');
        assert.equal(ctx.supervisor.info('app').state, 'queued');
        assert.equal(ctx.supervisor.info('app').pid, null);
        assert.deepEqual(byTag(app), []);
        writeFileSync(trigger, '');
        const report = await withDeadline(starting, { what: 'start app', timeoutMs: DEADLINE_MS });
        assert.equal(report.service.state, 'running');
        const dbRunning = indexOf(ctx.events, 'db', 'running');
        const appStarting = indexOf(ctx.events, 'app', 'starting');
        assert.ok(dbRunning >= 0 && appStarting > dbRunning, `db running (#${dbRunning}) before app starting (#${appStarting})`);
        assert.equal(ctx.supervisor.info('db').state, 'running');
      });
    });

    test('DEPENDENCY_FAILED when the dependency fails; the dependent is never spawned', async () => {
      await withSupervisor('deps-fail', {}, async (ctx) => {
        const port = await freePort();
        ctx.supervisor.define(svc('db', { ready: { tcp: port, timeoutMs: 500 } }));
        const app = svc('app', { dependsOn: ['db'] });
        ctx.supervisor.define(app);
        const error = await rejectsWith(ctx.supervisor.start('app'), 'DEPENDENCY_FAILED', 'start app');
        assert.equal(error.details.dependency, 'db');
        assert.equal(error.details.state, 'failed');
        const info = ctx.supervisor.info('app');
        assert.equal(info.state, 'failed');
        assert.equal(ctx.supervisor.info('db').state, 'failed');
        assert.ok(!statesOf(ctx.events, 'app').includes('starting'), `app states: ${statesOf(ctx.events, 'app').join(', ')}`);
        assert.deepEqual(byTag(app), []);
      });
    });

    test('DEPENDENCY_FAILED when a dependency is not defined', async () => {
      await withSupervisor('deps-missing', {}, async ({ supervisor }) => {
        supervisor.define(svc('app', { dependsOn: ['nothere'] }));
        const error = await rejectsWith(supervisor.start('app'), 'DEPENDENCY_FAILED', 'start app');
        assert.match(error.message, /not defined/);
        assert.equal(supervisor.info('app').state, 'failed');
      });
    });

    test('stop order: a dependency is stopped after its dependents', async () => {
      await withSupervisor('stop-order', {}, async (ctx) => {
        ctx.supervisor.define(svc('db'));
        ctx.supervisor.define(svc('cache', { dependsOn: ['db'] }));
        ctx.supervisor.define(svc('app', { dependsOn: ['cache', 'db'] }));
        await ctx.supervisor.start('app');
        for (const name of ['db', 'cache', 'app']) assert.equal(ctx.supervisor.info(name).state, 'running', name);
        const from = ctx.events.length;
        // Listed dependency-first: the order must come from the dependencies, not the list.
        await withDeadline(ctx.supervisor.stop(['db', 'cache', 'app']), { what: 'stop all three', timeoutMs: DEADLINE_MS });
        const appStopped = indexOf(ctx.events, 'app', 'stopped', from);
        const cacheStopping = indexOf(ctx.events, 'cache', 'stopping', from);
        const cacheStopped = indexOf(ctx.events, 'cache', 'stopped', from);
        const dbStopping = indexOf(ctx.events, 'db', 'stopping', from);
        assert.ok(appStopped >= 0 && cacheStopping > appStopped, `app stopped (#${appStopped}) before cache stopping (#${cacheStopping})`);
        assert.ok(cacheStopped >= 0 && dbStopping > cacheStopped, `cache stopped (#${cacheStopped}) before db stopping (#${dbStopping})`);
        for (const name of ['db', 'cache', 'app']) assert.equal(ctx.supervisor.info(name).state, 'stopped', name);
      });
    });
  });

  describe('concurrency limit', () => {
    test('with maxConcurrent 1, a second start is queued until the first stops', async () => {
      await withSupervisor('limit-queue', { maxConcurrent: 1 }, async ({ supervisor, events }) => {
        supervisor.define(svc('a'));
        const b = svc('b');
        supervisor.define(b);
        await supervisor.start('a');
        const startingB = pending(supervisor.start('b'));
        await waitFor(() => supervisor.limitStatus().queued === 1, { what: 'b in the limiter queue', timeoutMs: DEADLINE_MS, detail: () => JSON.stringify(supervisor.limitStatus()) });
        const status = supervisor.limitStatus();
        assert.equal(status.active_processes, 1);
        assert.equal(status.can_start_new, false);
        assert.deepEqual(status.active_pids, [supervisor.info('a').pid]);
        assert.equal(supervisor.info('b').state, 'queued');
        assert.deepEqual(byTag(b), []);
        await supervisor.stop(['a']);
        const report = await withDeadline(startingB, { what: 'start b', timeoutMs: DEADLINE_MS });
        assert.equal(report.service.state, 'running');
        assert.ok(indexOf(events, 'b', 'starting') > indexOf(events, 'a', 'stopped'));
        assert.equal(supervisor.limitStatus().active_processes, 1);
      });
    });

    test('queue: false is refused with LIMIT_REACHED, state stopped; exempt services do not count', async () => {
      await withSupervisor('limit-refuse', { maxConcurrent: 1 }, async ({ supervisor }) => {
        supervisor.define(svc('a'));
        const c = svc('c');
        supervisor.define(c);
        supervisor.define(svc('free', { exemptFromLimit: true }));
        await supervisor.start('a');
        await rejectsWith(supervisor.start('c', { queue: false }), 'LIMIT_REACHED', 'start c without queue');
        assert.equal(supervisor.info('c').state, 'stopped');
        assert.match(supervisor.info('c').reason ?? '', /concurrency limit of 1/);
        assert.deepEqual(byTag(c), []);
        const report = await withDeadline(supervisor.start('free', { queue: false }), { what: 'start the exempt service', timeoutMs: DEADLINE_MS });
        assert.equal(report.service.state, 'running');
        const status = supervisor.limitStatus();
        assert.equal(status.active_processes, 1);
        assert.deepEqual(status.active_pids, [supervisor.info('a').pid]);
      });
    });

    test('setLimit: raising the limit admits the queued start', async () => {
      await withSupervisor('limit-set', { maxConcurrent: 1 }, async ({ supervisor }) => {
        supervisor.define(svc('a'));
        supervisor.define(svc('b'));
        await supervisor.start('a');
        const startingB = pending(supervisor.start('b'));
        await waitFor(() => supervisor.limitStatus().queued === 1, { what: 'b queued', timeoutMs: DEADLINE_MS });
        assert.deepEqual(supervisor.setLimit(2), { old_limit: 1, new_limit: 2 });
        const report = await withDeadline(startingB, { what: 'start b', timeoutMs: DEADLINE_MS });
        assert.equal(report.service.state, 'running');
        assert.equal(supervisor.info('a').state, 'running');
        const status = supervisor.limitStatus();
        assert.equal(status.active_processes, 2);
        assert.equal(status.max_allowed, 2);
        // Lowering it stops nothing.
        assert.deepEqual(supervisor.setLimit(1), { old_limit: 2, new_limit: 1 });
        assert.equal(supervisor.info('a').state, 'running');
        assert.equal(supervisor.info('b').state, 'running');
        assert.equal(supervisor.limitStatus().utilization_percent, 200);
      });
    });
  });

  describe('ports', () => {
    test('a declared port held by a foreign process: PORT_IN_USE naming its pid; freePort alone leaves it', async () => {
      await withSupervisor('port-foreign', {}, async ({ supervisor }) => {
        const port = await freePort();
        const foreign = await startForeignListener(port);
        try {
          const web = svc('web', { ports: [port] });
          supervisor.define(web);
          const error = await rejectsWith(supervisor.start('web'), 'PORT_IN_USE', 'start web');
          assert.match(error.message, new RegExp(`pid ${foreign.pid} `));
          assert.match(error.message, /not tend's/);
          assert.equal(supervisor.info('web').state, 'failed');

          const again = await rejectsWith(supervisor.start('web', { freePort: true }), 'PORT_IN_USE', 'start web --free-port');
          assert.match(again.message, new RegExp(`pid ${foreign.pid} `));
          assert.match(again.message, /--force/);
          assert.equal(foreign.exitCode, null);
          assert.equal(foreign.signalCode, null);
          assert.equal(await isPortFree(port), false);
          assert.deepEqual(byTag(web), []);
        } finally {
          foreign.kill('SIGKILL');
          await waitForExit(foreign, { what: 'the foreign listener' });
        }
      });
    });

    test('freePort + force stops a foreign holder and reports it in freed', async () => {
      await withSupervisor('port-force', {}, async ({ supervisor }) => {
        const port = await freePort();
        const foreign = await startForeignListener(port);
        try {
          supervisor.define(svc('web', { ports: [port] }));
          const exited = waitForExit(foreign, { what: 'the foreign listener', timeoutMs: DEADLINE_MS });
          const report = await withDeadline(supervisor.start('web', { freePort: true, force: true }), { what: 'start web --free-port --force', timeoutMs: DEADLINE_MS });
          assert.equal(report.service.state, 'running');
          assert.equal(report.freed.length, 1);
          assert.equal(report.freed[0]?.port, port);
          assert.equal(report.freed[0]?.pid, foreign.pid);
          assert.equal(report.freed[0]?.tend, false);
          assert.match(report.freed[0]?.command ?? '', /node/);
          const status = await exited;
          assert.equal(status.signal, 'SIGTERM');
          assert.equal(await isPortFree(port), true);
        } finally {
          foreign.kill('SIGKILL');
          await waitForExit(foreign, { what: 'the foreign listener' });
        }
      });
    });

    test('a port held by another service of the supervisor is freed by stopping that service', async () => {
      await withSupervisor('port-service', {}, async ({ supervisor }) => {
        const port = await freePort();
        const holder = svc('holder', { command: NODE, args: ['-e', serverCode(port)], ports: [port], ready: { tcp: port, timeoutMs: DEADLINE_MS } });
        supervisor.define(holder);
        supervisor.define(svc('taker', { ports: [port] }));
        await supervisor.start('holder');
        const holderInfo = supervisor.info('holder');
        const seen = byTag(holder);
        await rejectsWith(supervisor.start('taker'), 'PORT_IN_USE', 'start taker without freePort');
        assert.equal(supervisor.info('holder').state, 'running');
        const report = await withDeadline(supervisor.start('taker', { freePort: true }), { what: 'start taker --free-port', timeoutMs: DEADLINE_MS });
        assert.equal(report.service.state, 'running');
        assert.deepEqual(
          report.freed.map((f) => ({ port: f.port, pid: f.pid, tend: f.tend })),
          [{ port, pid: holderInfo.pid, tend: true }],
        );
        const holderAfter = supervisor.info('holder');
        assert.equal(holderAfter.state, 'stopped');
        assert.equal(holderAfter.pid, null);
        assertGone(seen, 'the holder service');
      });
    });
  });

  test('kill-all: every pid that was alive is reported, all services stopped, queued starts refused', async () => {
    await withSupervisor('kill-all', { maxConcurrent: 2 }, async ({ supervisor, events }) => {
      const a = svc('a');
      const b = svc('b', { command: SH, args: ['-c', `${SLEEP} 1000 & ${SLEEP} 1000`] });
      const c = svc('c');
      const d = svc('d');
      for (const s of [a, b, c, d]) supervisor.define(s);
      await supervisor.start('a');
      await supervisor.start('b');
      await awaitTree(b, 'sleep', 2);
      const queued = pending(supervisor.start('c'));
      await waitFor(() => supervisor.limitStatus().queued === 1, { what: 'c queued', timeoutMs: DEADLINE_MS });
      const alive = [...byTag(a), ...byTag(b)];
      const expected = alive.map((p) => p.pid).sort((x, y) => x - y);
      const report = await withDeadline(supervisor.killAll(), { what: 'killAll', timeoutMs: DEADLINE_MS });
      assert.deepEqual(report.killed_pids, expected);
      assert.equal(report.killed_count, expected.length);
      assert.deepEqual(report.services, ['a', 'b']);
      assert.equal(report.dequeued, 1);
      await rejectsWith(queued, 'LIMIT_REACHED', 'the queued start of c');
      for (const name of ['a', 'b', 'c', 'd']) assert.equal(supervisor.info(name).state, 'stopped', name);
      assert.ok(!statesOf(events, 'd').includes('stopping'), 'd never ran');
      assertGone(alive, 'the trees after kill-all');
      assert.deepEqual(byTag(c), []);
      assert.equal(supervisor.limitStatus().active_processes, 0);
    });
  });

  describe('races between commands', () => {
    // The start comes while kill-all is killing: in the same turn (always before the killed tree's exit is
    // seen), or one event-loop turn later (which, depending on timing, may come after kill-all is done).
    const startAfterKillAll: readonly { readonly when: string; readonly defer: (start: () => void) => void }[] = [
      { when: 'in the same turn', defer: (start) => start() },
      { when: 'one event-loop turn later', defer: (start) => setImmediate(start) },
    ];
    for (const { when, defer } of startAfterKillAll) {
      test(`kill-all racing a start ${when}: the start runs one tree, once the kill is done; the limiter counts only live pids`, async () => {
        await withSupervisor('race-kill-all', {}, async ({ supervisor }) => {
          const web = svc('web', { restart: 'on-failure', restartLimit: { maxRestarts: 5, backoffMs: 10, maxBackoffMs: 10 } });
          supervisor.define(web);
          const first = await withDeadline(supervisor.start('web'), { what: 'start web', timeoutMs: DEADLINE_MS });
          const killing = pending(supervisor.killAll());
          const starting = pending(new Promise<unknown>((resolve, reject) => defer(() => void supervisor.start('web').then(resolve, reject))));
          const killed = await settled(killing, 'killAll');
          assert.ok('value' in killed, `killAll rejected: ${'error' in killed ? String(killed.error) : ''}`);
          const started = await settled(starting, 'the start after killAll');

          const info = supervisor.info('web');
          const alive = byTag(web);
          assert.ok(info.state === 'running' || info.state === 'stopped', `web is ${info.state} (${info.reason ?? ''}) once both settled; alive:\n${describeProcesses(alive)}`);
          if (info.state === 'running') {
            assert.ok(info.pid !== null && info.handle !== null);
            assert.notEqual(info.handle, first.service.handle, 'a new tree runs after kill-all');
            assert.deepEqual(
              findMarked({ value: info.handle }).map((p) => p.pid),
              [info.pid],
            );
            assert.deepEqual(
              alive.map((p) => p.pid),
              [info.pid],
              `only the tree web reports may be alive:\n${describeProcesses(alive)}`,
            );
          } else {
            assert.deepEqual(alive, [], `web is stopped, yet:\n${describeProcesses(alive)}`);
          }
          const { active_pids } = supervisor.limitStatus();
          const dead = active_pids.filter((pid) => {
            const id = procIdentity(pid);
            return id === undefined || id.state === 'Z' || id.state === 'X';
          });
          assert.deepEqual(dead, [], `the limiter counts pids that are gone (active_pids ${JSON.stringify(active_pids)})`);
          assert.deepEqual(active_pids, info.state === 'running' ? [info.pid] : []);
          // The start came after kill-all had interrupted the service: it waits for the kill, then runs; nothing cancels it.
          assert.ok('value' in started, `the start issued after killAll was refused: ${'error' in started ? String(started.error) : ''}`);
          assert.equal(info.state, 'running');
        });
      });
    }

    test('delete racing a start: the start is SERVICE_UNKNOWN, nothing runs, the store forgets it', async () => {
      const storeDir = join(makeStateDir('sup-race-delete'), 'services');
      const store = new ServiceStore(storeDir, () => undefined);
      await withSupervisor('race-delete', { store }, async (ctx) => {
        const { supervisor } = ctx;
        const trigger = triggerPath(ctx, 'delete');
        const slow = slowStop('slow', trigger);
        supervisor.define(slow);
        await withDeadline(supervisor.start('slow'), { what: 'start slow', timeoutMs: DEADLINE_MS });
        const seen = byTag(slow);
        const deleting = pending(supervisor.delete('slow'));
        await waitForState(supervisor, 'slow', 'stopping');
        const starting = pending(supervisor.start('slow'));
        writeFileSync(trigger, '');
        await withDeadline(deleting, { what: 'delete slow', timeoutMs: DEADLINE_MS });
        await rejectsWith(starting, 'SERVICE_UNKNOWN', 'the start that raced the delete');
        assert.equal(supervisor.has('slow'), false);
        assertGone(seen, 'slow after delete');
        assert.deepEqual(byTag(slow), [], `nothing of slow may run after delete:\n${describeProcesses(byTag(slow))}`);
        assert.equal(existsSync(join(storeDir, 'slow.json')), false, 'the store still has slow.json');
        assert.deepEqual(
          store.load().map((s) => s.definition.name),
          [],
        );
      });
    });

    test('restart racing stop: the stop wins, nothing runs, the service is not wanted', async () => {
      const storeDir = join(makeStateDir('sup-race-restart'), 'services');
      const store = new ServiceStore(storeDir, () => undefined);
      await withSupervisor('race-restart', { store }, async (ctx) => {
        const { supervisor } = ctx;
        const trigger = triggerPath(ctx, 'restart');
        const slow = slowStop('slow', trigger);
        supervisor.define(slow);
        await withDeadline(supervisor.start('slow'), { what: 'start slow', timeoutMs: DEADLINE_MS });
        const seen = byTag(slow);
        const restarting = pending(supervisor.restart('slow'));
        await waitForState(supervisor, 'slow', 'stopping');
        const stopping = pending(supervisor.stop(['slow']));
        writeFileSync(trigger, '');
        await settled(restarting, 'restart slow');
        const stopped = await settled(stopping, 'stop slow');
        assert.ok('value' in stopped, `stop rejected: ${'error' in stopped ? String(stopped.error) : ''}`);
        const info = supervisor.info('slow');
        assert.equal(info.state, 'stopped', `slow is ${info.state} (${info.reason ?? ''})`);
        assert.equal(info.pid, null);
        assertGone(seen, 'the first run of slow');
        assert.deepEqual(byTag(slow), [], `nothing of slow may run after the stop:\n${describeProcesses(byTag(slow))}`);
        assert.deepEqual(
          store.load().map((s) => [s.definition.name, s.wanted]),
          [['slow', false]],
        );
      });
    });
  });

  describe('unresponsive', () => {
    // Two busy loops at the highest priority (root may raise it; otherwise nice only warns): the
    // tree then really uses a whole CPU over the window even on a loaded shared machine.
    const loop = `${NICE} -n -20 ${NODE} -e 'for (;;) {}'`;
    const busy = ['-c', `${loop} & exec ${loop}`];

    test('cpu_window: a busy loop is marked unresponsive with a reason, and stays running', async () => {
      await withSupervisor('cpu', { sampleIntervalMs: 100 }, async ({ supervisor }) => {
        supervisor.define(svc('spin', { command: SH, args: busy, unresponsive: { cpuWindowMs: 500, probeIntervalMs: undefined, probeFailures: 1, restart: false } }));
        supervisor.define(svc('idle', { unresponsive: { cpuWindowMs: 500, probeIntervalMs: undefined, probeFailures: 1, restart: false } }));
        await supervisor.start('idle');
        const { service } = await supervisor.start('spin');
        const info = await waitForService(supervisor, 'spin', (i) => i.unresponsive, 'unresponsive', 30_000);
        assert.match(info.reason ?? '', /CPU at 100% for 500 ms/);
        assert.equal(info.state, 'running');
        assert.equal(info.pid, service.pid);
        assert.equal(info.restarts, 0);
        assert.equal(supervisor.info('idle').unresponsive, false);

      });
    });

    test('cpu_window with restart: the service is restarted (restarts counted, a new pid)', async () => {
      await withSupervisor('cpu-restart', { sampleIntervalMs: 100 }, async ({ supervisor }) => {
        supervisor.define(svc('spin', { command: SH, args: busy, unresponsive: { cpuWindowMs: 500, probeIntervalMs: undefined, probeFailures: 1, restart: true } }));
        const { service } = await supervisor.start('spin');
        const info = await waitForService(supervisor, 'spin', (i) => i.restarts >= 1 && i.state === 'running' && i.pid !== null, 'restarted and running', 30_000);
        assert.notEqual(info.pid, service.pid);
        assert.notEqual(info.handle, service.handle);
        assert.deepEqual(survivorsOf(service.handle as string), []);
      });
    });

    test('probe failures: the readiness check failing probeFailures times in a row marks it unresponsive', async () => {
      await withSupervisor('probe', {}, async ({ supervisor }) => {
        const port = await freePort();
        // Closes its listening socket on the first connection (the readiness check's).
        const code = serverCode(port, 'c.destroy(); s.close()');
        supervisor.define(svc('flaky', { command: NODE, args: ['-e', code], ready: { tcp: port, timeoutMs: 5000 }, unresponsive: { cpuWindowMs: undefined, probeIntervalMs: 50, probeFailures: 2, restart: false } }));
        const { service } = await supervisor.start('flaky');
        assert.equal(service.ready, true);
        assert.equal(service.unresponsive, false);
        // Each liveness probe retries for up to the check's timeout (5 s at most) before it counts as failed.
        const info = await waitForService(supervisor, 'flaky', (i) => i.unresponsive, 'unresponsive', 30_000);
        assert.match(info.reason ?? '', /readiness check failed 2 times in a row/);
        assert.equal(info.state, 'running');
        assert.equal(info.pid, service.pid);
      });
    });
  });

  test('logs and PID files: output in <logDir>/NAME.log, PID file while running, removed after', async () => {
    const base = makeStateDir('sup-logs-dirs');
    const logDir = join(base, 'logs');
    const runDir = join(base, 'run');
    await withSupervisor('logs', { logDir, runDir }, async ({ supervisor }) => {
      supervisor.define(svc('talker', { command: SH, args: ['-c', `echo hello-out; echo hello-err >&2; exec ${SLEEP} 1000`] }));
      const logPath = join(logDir, 'talker.log');
      assert.equal(supervisor.logPath('talker'), logPath);
      const { service } = await supervisor.start('talker');
      assert.equal(service.log, logPath);
      await waitForLineInFile(logPath, /^hello-out$/, { what: 'stdout in the log', timeoutMs: DEADLINE_MS });
      await waitForLineInFile(logPath, /^hello-err$/, { what: 'stderr in the log', timeoutMs: DEADLINE_MS });
      const pidFile = join(runDir, 'talker.pid');
      assert.equal(readFileSync(pidFile, 'utf8'), `${service.pid}\n`);
      await supervisor.stop(['talker']);
      assert.equal(existsSync(pidFile), false, 'the PID file is removed after stop');
      assert.ok(existsSync(logPath), 'the log stays');
    });
  });

  test('define: another definition while running is SERVICE_RUNNING; the same one is fine; once stopped it is replaced', async () => {
    await withSupervisor('define', {}, async ({ supervisor }) => {
      const web = svc('web');
      supervisor.define(web);
      await supervisor.start('web');
      const other = { ...web, args: ['2000'] };
      assert.throws(
        () => supervisor.define(other),
        (error: unknown) => isTendError(error, 'SERVICE_RUNNING') && error.details.name === 'web',
      );
      assert.deepEqual(supervisor.definition('web').args, ['1000']);
      assert.doesNotThrow(() => supervisor.define({ ...web }));
      await supervisor.stop(['web']);
      supervisor.define(other);
      assert.deepEqual(supervisor.definition('web').args, ['2000']);
      const { service } = await supervisor.start('web');
      const sleep = findMarked({ value: service.handle as string }).find((p) => p.pid === service.pid);
      assert.match(sleep?.cmdline ?? '', /sleep 2000$/);
    });
  });

  test('define: SERVICE_RUNNING names what differs, down to the env variable', async () => {
    await withSupervisor('define-env', {}, async ({ supervisor }) => {
      const web = svc('web');
      supervisor.define({ ...web, env: { ...web.env, MODE: 'one' } });
      await supervisor.start('web');
      let thrown: unknown;
      try {
        supervisor.define({ ...web, env: { ...web.env, MODE: 'two' } });
      } catch (error) {
        thrown = error;
      }
      assert.ok(isTendError(thrown, 'SERVICE_RUNNING'), `expected SERVICE_RUNNING, got ${String(thrown)}`);
      assert.equal(thrown.details.differences, 'env MODE');
      assert.match(thrown.message, /env MODE/);
      assert.equal(supervisor.definition('web').env.MODE, 'one');
    });
  });

  test('define: a dependency cycle is refused with SPEC_OPTION_INVALID naming it', async () => {
    await withSupervisor('define-cycle', {}, async ({ supervisor }) => {
      supervisor.define(svc('a', { dependsOn: ['b'] }));
      assert.throws(
        () => supervisor.define(svc('b', { dependsOn: ['a'] })),
        (error: unknown) => isTendError(error, 'SPEC_OPTION_INVALID') && /cycle/.test(error.message) && /b -> a -> b/.test(error.message),
      );
      assert.equal(supervisor.has('b'), false);
      assert.deepEqual(supervisor.definition('a').dependsOn, ['b']);
      // Without the cycle, b is accepted and a starts after it.
      supervisor.define(svc('b'));
      await withDeadline(supervisor.start('a'), { what: 'start a', timeoutMs: DEADLINE_MS });
      assert.equal(supervisor.info('b').state, 'running');
    });
  });

  test('unknown names are SERVICE_UNKNOWN with a suggestion', async () => {
    await withSupervisor('unknown', {}, async ({ supervisor }) => {
      supervisor.define(svc('web'));
      await rejectsWith(Promise.resolve().then(() => supervisor.start('wbe')), 'SERVICE_UNKNOWN', 'start wbe');
      assert.throws(() => supervisor.info('wbe'), (error: unknown) => isTendError(error, 'SERVICE_UNKNOWN') && error.details.suggestion === 'web');
    });
  });

  describe('store', () => {
    test('restoreWanted starts only the wanted services', async () => {
      const storeDir = join(makeStateDir('sup-store'), 'services');
      const store = new ServiceStore(storeDir, () => undefined);
      const wanted = svc('wanted');
      const idle = svc('idle');
      store.save({ definition: wanted, wanted: true });
      store.save({ definition: idle, wanted: false });
      await withSupervisor('restore', { store }, async ({ supervisor, events }) => {
        for (const stored of store.load()) supervisor.define(stored.definition, stored.wanted);
        supervisor.restoreWanted();
        const info = await waitForState(supervisor, 'wanted', 'running');
        assert.equal(typeof info.pid, 'number');
        assert.equal(supervisor.info('idle').state, 'stopped');
        assert.deepEqual(statesOf(events, 'idle'), ['stopped']);
        assert.deepEqual(byTag(idle), []);
        assert.deepEqual(
          store.load().map((s) => [s.definition.name, s.wanted]),
          [
            ['idle', false],
            ['wanted', true],
          ],
        );
      });
    });

    test('close({ forget: false }) stops everything but leaves the services wanted in the store', async () => {
      const storeDir = join(makeStateDir('sup-store-close'), 'services');
      const store = new ServiceStore(storeDir, () => undefined);
      await withSupervisor('close-keep', { store }, async ({ supervisor }) => {
        const web = svc('web', { command: SH, args: ['-c', `${SLEEP} 1000 & ${SLEEP} 1000`] });
        supervisor.define(web);
        supervisor.define(svc('off'));
        await supervisor.start('web');
        const seen = await awaitTree(web, 'sleep', 2);
        assert.deepEqual(
          store.load().map((s) => [s.definition.name, s.wanted]),
          [
            ['off', false],
            ['web', true],
          ],
        );
        await withDeadline(supervisor.close({ forget: false }), { what: 'close without forgetting', timeoutMs: DEADLINE_MS });
        assertGone(seen, 'web after close');
        assert.equal(supervisor.info('web').state, 'stopped');
        assert.deepEqual(
          store.load().map((s) => [s.definition.name, s.wanted]),
          [
            ['off', false],
            ['web', true],
          ],
        );
        await rejectsWith(supervisor.start('web'), 'MANAGER_CLOSED', 'start after close');
      });
    });

    test('restoreWanted: a dependent that sorts before its dependency, both stored as exited, both end running', async () => {
      const storeDir = join(makeStateDir('sup-store-order'), 'services');
      const store = new ServiceStore(storeDir, () => undefined);
      await withSupervisor('restore-order', { store }, async ({ supervisor, warnings }) => {
        const outcome: StoredOutcome = { state: 'exited', reason: 'exit code 0 (exited cleanly)', restarts: 0, lastExit: { code: 0, signal: null, at: new Date().toISOString() } };
        // In the order the store loads them, by name: the dependent first.
        supervisor.define(svc('api', { dependsOn: ['zdb'] }), true, outcome);
        supervisor.define(svc('zdb'), true, outcome);
        supervisor.restoreWanted();
        await waitForState(supervisor, 'zdb', 'running');
        const api = await waitForService(supervisor, 'api', (i) => i.state === 'running' || i.state === 'failed' || i.state === 'exited' || i.state === 'stopped', 'running, or ended');
        assert.equal(api.state, 'running', `api is ${api.state}: ${api.reason ?? ''}; warnings: ${warnings.join(' | ')}`);
        assert.equal(supervisor.info('zdb').state, 'running');
      });
    });

    test('close({ forget: true }) leaves them unwanted; delete() removes the file', async () => {
      const storeDir = join(makeStateDir('sup-store-forget'), 'services');
      const store = new ServiceStore(storeDir, () => undefined);
      await withSupervisor('close-forget', { store }, async ({ supervisor }) => {
        supervisor.define(svc('web'));
        supervisor.define(svc('gone'));
        await supervisor.start('web');
        await supervisor.start('gone');
        await supervisor.delete('gone');
        assert.equal(supervisor.has('gone'), false);
        await supervisor.close({ forget: true });
        assert.deepEqual(
          store.load().map((s) => [s.definition.name, s.wanted]),
          [['web', false]],
        );
      });
    });
  });
});
