// The harness of the supervisor's tests: services whose every process carries
// the run's marker (and a tag of its own), a fresh supervisor per test that is
// closed and checked for survivors after it, and waits for events with deadlines.
import { after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ProcessManager } from '../../src/index.js';
import { isTendError, type ErrorCode } from '../../src/core/errors.js';
import { systemProcessTable } from '../../src/platform/proc-table.js';
import type { ServiceConfig } from '../../src/service/definition.js';
import type { ServiceInfo, ServiceState } from '../../src/supervisor/service-info.js';
import { Supervisor, type SupervisorOptions } from '../../src/supervisor/supervisor.js';
import { RUN_VARIABLE, cleanupByMarker } from '../helpers/cleanup.js';
import { NODE, PATH } from '../helpers/fixtures.js';
import { describeProcesses, findMarked, procIdentity, survivorsOf, type MarkedProcess } from '../helpers/proc-scan.js';
import { SLEEP, makeStateDir, removeStateDirs } from '../helpers/state.js';
import { waitFor, withDeadline } from '../helpers/wait.js';

export { freePort } from '../helpers/ports.js';

export const RUN = `supervisor-${randomBytes(6).toString('hex')}`;
/** Processes the tests start themselves (foreign port holders): not the services'. */
export const FOREIGN_RUN = `${RUN}-foreign`;
/** Each service's processes carry TEND_TEST_SERVICE=<tag> too, so a tree is found even before its handle is known. */
export const TAG_VARIABLE = 'TEND_TEST_SERVICE';
export const DEADLINE_MS = 15_000;
export const NICE = ['/usr/bin/nice', '/bin/nice'].find((p) => existsSync(p)) ?? 'nice';

let tagCounter = 0;

/** A tag unique to one service of one test. */
export function newTag(name: string): string {
  return `${RUN}-${name}-${++tagCounter}`;
}

/** A complete definition: a sleep, restart never, pgroup; `overrides` on top. */
export function svc(name: string, overrides: Partial<ServiceConfig> & { tag?: string } = {}): ServiceConfig {
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

export function tagOf(definition: ServiceConfig): string {
  const tag = definition.env[TAG_VARIABLE];
  assert.ok(tag);
  return tag;
}

export function byTag(definition: ServiceConfig): MarkedProcess[] {
  return findMarked({ variable: TAG_VARIABLE, value: tagOf(definition) });
}

export interface StateEvent {
  readonly name: string;
  readonly state: ServiceState;
  readonly reason: string | null;
}

export interface Context {
  readonly supervisor: Supervisor;
  readonly manager: ProcessManager;
  readonly stateDir: string;
  /** Every 'state' event, in order, with the reason at the time. */
  readonly events: StateEvent[];
  readonly warnings: string[];
}

/** A fresh state dir, manager and supervisor for `body`; closed (forgetting) and shut down after, then checked for survivors. */
export async function withSupervisor(label: string, options: Partial<Omit<SupervisorOptions, 'manager' | 'table'>>, body: (ctx: Context) => Promise<void>): Promise<void> {
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
export function waitForService(supervisor: Supervisor, name: string, accept: (info: ServiceInfo) => boolean, what: string, timeoutMs = DEADLINE_MS): Promise<ServiceInfo> {
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

export function waitForState(supervisor: Supervisor, name: string, state: ServiceState, timeoutMs = DEADLINE_MS): Promise<ServiceInfo> {
  return waitForService(supervisor, name, (i) => i.state === state, `state ${state}`, timeoutMs);
}

/** Marks a promise awaited later as handled now, so a rejection before the test awaits it is not an unhandled one. */
export function pending<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/** Polls until the service has spawned its command (no event marks that: 'starting' comes before the spawn). */
export function waitForSpawn(supervisor: Supervisor, name: string): Promise<ServiceInfo> {
  let info: ServiceInfo | undefined;
  return waitFor(() => ((info = supervisor.info(name)).pid !== null ? info : undefined), {
    what: `${name} to be spawned`,
    timeoutMs: DEADLINE_MS,
    detail: () => JSON.stringify(info),
  });
}

/** Asserts `promise` rejects with a TendError of `code`, and returns it. */
export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, what: string) {
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
export function awaitTree(definition: ServiceConfig, comm: string, count: number): Promise<MarkedProcess[]> {
  let seen: MarkedProcess[] = [];
  return waitFor(() => ((seen = byTag(definition)).filter((p) => p.comm === comm).length >= count ? seen : undefined), {
    what: `${count} ${comm} of ${definition.name}`,
    timeoutMs: DEADLINE_MS,
    detail: () => describeProcesses(seen),
  });
}

export function assertGone(processes: readonly MarkedProcess[], what: string): void {
  const alive = processes.filter((p) => {
    const id = procIdentity(p.pid);
    return id !== undefined && id.startTime === p.startTime && id.state !== 'Z' && id.state !== 'X';
  });
  assert.equal(alive.length, 0, `${what}: still alive:\n${describeProcesses(alive)}`);
}


/** Node code for a TCP server on 127.0.0.1:port that prints "listening" once it is. */
export function serverCode(port: number, onConnection = 'c.destroy()'): string {
  return `const s = require('net').createServer((c) => { ${onConnection}; }); s.listen(${port}, '127.0.0.1', () => console.log('listening')); setInterval(() => {}, 1 << 30);`;
}

/** A process of the test's own (not tend's) listening on `port`; resolves once it listens. */
export async function startForeignListener(port: number): Promise<ChildProcess> {
  const child = spawn(NODE, ['-e', serverCode(port)], { stdio: ['ignore', 'pipe', 'inherit'], env: { PATH, [RUN_VARIABLE]: FOREIGN_RUN } });
  child.on('error', () => undefined);
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await waitFor(() => out.includes('listening'), { what: `the foreign listener on ${port}`, timeoutMs: DEADLINE_MS, detail: () => out });
  return child;
}

export function statesOf(events: readonly StateEvent[], name: string): ServiceState[] {
  return events.filter((e) => e.name === name).map((e) => e.state);
}

export function indexOf(events: readonly StateEvent[], name: string, state: ServiceState, from = 0): number {
  return events.findIndex((e, i) => i >= from && e.name === name && e.state === state);
}

/** A file that does not exist yet: services that wait for it exit (or listen) only once the test creates it. */
export function triggerPath(ctx: Context, label: string): string {
  return join(ctx.stateDir, `trigger-${label}`);
}

/** sh code that polls until `file` exists. */
export function waitForFileCode(file: string): string {
  return `while [ ! -e '${file}' ]; do sleep 0.02; done`;
}

/**
 * A node service that, once SIGTERMed, exits only when `trigger` exists: its
 * stop waits until the test lets it end. Ready once its SIGTERM handler is in place.
 */
export function slowStop(name: string, trigger: string): ServiceConfig {
  const code = `const fs = require('fs'); process.on('SIGTERM', () => { setInterval(() => { if (fs.existsSync(${JSON.stringify(trigger)})) process.exit(0); }, 20); }); console.log('armed'); setInterval(() => {}, 1 << 30);`;
  return svc(name, { command: NODE, args: ['-e', code], ready: { log: '^armed$', timeoutMs: DEADLINE_MS }, stopTimeoutMs: DEADLINE_MS });
}

/** Settles when `promise` does, within the deadline, with its outcome (a rejection as the error). */
export async function settled<T>(promise: Promise<T>, what: string): Promise<{ value: T } | { error: unknown }> {
  return withDeadline(
    promise.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    { what, timeoutMs: DEADLINE_MS },
  );
}

/** In each test file: nothing a service started outlives its test, and the file's leftovers are cleaned after it. */
export function checkNothingSurvives(): void {
  after(async () => {
    await cleanupByMarker({ variable: RUN_VARIABLE, value: RUN });
    await cleanupByMarker({ variable: RUN_VARIABLE, value: FOREIGN_RUN });
    removeStateDirs();
  });
  afterEach(() => {
    const left = findMarked({ variable: RUN_VARIABLE, value: RUN });
    assert.equal(left.length, 0, `processes of the test's services survived it:\n${describeProcesses(left)}`);
  });
}
