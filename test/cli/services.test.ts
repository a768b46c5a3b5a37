// The service commands, driven as a user drives them: the bundled bin
// (dist/src/bin/tend.js) spawned with a deadline, judged by exit code, output,
// the state directory and /proc. Each test has its own state directory
// (TEND_HOME) and so its own daemon, which it stops at the end; the processes
// its services start carry TEST_TOKEN=<per-test token> (passed with --env) so
// that what survives can be found in /proc without trusting tend.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isGone, scanProcesses, type ProcInfo } from '../helpers/proc-scan.js';
import { removeDir, repoRoot, Running, type RunResult } from '../helpers/unit-local.js';
import { waitFor, withDeadline } from '../helpers/wait.js';

const TEND = join(repoRoot, 'dist/src/bin/tend.js');
const RUN_ID = randomBytes(6).toString('hex');
const tmp = mkdtempSync(join(tmpdir(), 'tsv-'));
const home = join(tmp, 'home');
mkdirSync(home);

// ----------------------------------------------------------------- shapes --

interface ServiceInfo {
  name: string;
  state: string;
  pid: number | null;
  pids: number[];
  started_at: string | null;
  uptime_ms: number | null;
  restarts: number;
  cpu_percent: number | null;
  memory_bytes: number | null;
  ports: number[];
  ready: boolean | null;
  unresponsive: boolean;
  reason: string | null;
  wanted: boolean;
  last_exit: { code: number | null; signal: string | null; at: string } | null;
  command: string;
  args: string[];
  cwd: string;
  log: string | null;
  restart: string;
  exempt_from_limit: boolean;
  handle: string | null;
  strategy: string | null;
}

interface StartReport {
  service: ServiceInfo;
  already_running: boolean;
  freed: { port: number; pid: number; command?: string; tend: boolean }[];
}

interface LimitStatus {
  active_processes: number;
  max_allowed: number;
  utilization_percent: number;
  can_start_new: boolean;
  active_pids: number[];
  starting: number;
  queued: number;
  old_limit?: number;
  new_limit?: number;
}

interface PsReport {
  daemon: boolean;
  state_dir: string;
  services: ServiceInfo[];
  limit: LimitStatus | null;
}

const serviceKeys = [
  'name', 'state', 'pid', 'pids', 'started_at', 'uptime_ms', 'restarts', 'cpu_percent', 'memory_bytes', 'ports', 'ready', 'unresponsive',
  'reason', 'wanted', 'last_exit', 'command', 'args', 'cwd', 'log', 'restart', 'exempt_from_limit', 'handle', 'strategy',
];
const states = ['queued', 'starting', 'running', 'backoff', 'stopping', 'stopped', 'exited', 'failed'];

/** Checks the documented shape of one service (ServiceInfo), and that a running one has a pid and the rest does not. */
function assertServiceShape(s: ServiceInfo, what = 'service'): void {
  for (const key of serviceKeys) assert.ok(key in s, `${what} has no key ${key}: ${JSON.stringify(s)}`);
  assert.equal(typeof s.name, 'string');
  assert.ok(states.includes(s.state), `${what}: unknown state ${s.state}`);
  assert.ok(Array.isArray(s.pids) && Array.isArray(s.ports) && Array.isArray(s.args), `${what}: pids, ports, args are arrays`);
  assert.equal(typeof s.restarts, 'number');
  assert.equal(typeof s.unresponsive, 'boolean');
  assert.equal(typeof s.exempt_from_limit, 'boolean');
  assert.equal(typeof s.command, 'string');
  assert.equal(typeof s.cwd, 'string');
  assert.ok(['never', 'on-failure', 'always'].includes(s.restart), `${what}: restart ${s.restart}`);
  if (s.state === 'running') {
    assert.equal(typeof s.pid, 'number', `${what}: running without a pid`);
    assert.ok(s.pids.includes(s.pid as number), `${what}: its pid ${s.pid} is not among its tree ${s.pids.join(' ')}`);
    assert.equal(typeof s.handle, 'string', `${what}: running without a handle`);
    assert.ok(s.started_at !== null && !Number.isNaN(Date.parse(s.started_at)), `${what}: started_at ${s.started_at}`);
    assert.equal(typeof s.uptime_ms, 'number');
  }
  if (s.state === 'stopped' || s.state === 'exited' || s.state === 'failed') {
    assert.equal(s.pid, null, `${what}: ${s.state} with a pid`);
    assert.deepEqual(s.pids, [], `${what}: ${s.state} with a tree`);
    assert.equal(s.handle, null, `${what}: ${s.state} with a handle`);
  }
}

function assertLimitShape(l: LimitStatus): void {
  for (const key of ['active_processes', 'max_allowed', 'utilization_percent', 'can_start_new', 'active_pids', 'starting', 'queued']) {
    assert.ok(key in l, `limit status has no key ${key}: ${JSON.stringify(l)}`);
  }
  assert.equal(typeof l.can_start_new, 'boolean');
  assert.ok(Array.isArray(l.active_pids));
  assert.equal(l.active_processes, l.active_pids.length + l.starting, `active_processes ${l.active_processes} vs active_pids ${l.active_pids.join(' ')} and ${l.starting} starting`);
}

// ------------------------------------------------------------ the harness --

const describeProcs = (ps: ProcInfo[]): string[] => ps.map((p) => `${p.pid} ${p.state} ${p.cmdline}`);

/** A daemon's command line: it sets its title to "tend daemon", which replaces `node .../tend.js daemon run`. */
const isDaemonCmdline = (cmdline: string): boolean => cmdline === 'tend daemon' || /tend\.js daemon run$/.test(cmdline);

/** Live daemons (and reapers) serving `dir`, found in /proc by their command line and environment. */
function daemonProcesses(dir: string): ProcInfo[] {
  return scanProcesses({ live: true }).filter(
    (p) => (isDaemonCmdline(p.cmdline) && p.env.get('TEND_HOME') === dir) || p.cmdline.includes(`--log ${dir}/lifecycle.jsonl`),
  );
}

let counter = 0;

/** One state directory, its daemon, and a token its services carry. */
class State {
  readonly dir: string;
  readonly token: string;
  readonly env: Record<string, string>;
  /** Background tend commands (followers, queued starts) to end at cleanup. */
  readonly background: Running[] = [];
  /** Helper processes this test started itself (a port holder). */
  readonly helpers: Running[] = [];

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'ts-'));
    chmodSync(this.dir, 0o700);
    this.token = `${RUN_ID}-${++counter}`;
    this.env = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: home, TEND_HOME: this.dir, LANG: 'C' };
  }

  /** `--env TEST_TOKEN=...`, to put before `--`. */
  get mark(): string[] {
    return ['--env', `TEST_TOKEN=${this.token}`];
  }

  spawn(args: readonly string[], cwd = tmp): Running {
    return new Running(process.execPath, [TEND, ...args], { env: this.env, cwd });
  }

  run(args: readonly string[], timeoutMs = 30_000): Promise<RunResult> {
    return this.spawn(args).result(timeoutMs);
  }

  /** Runs a command that must succeed (exit 0) and print one JSON document. */
  async json<T>(args: readonly string[], timeoutMs = 30_000): Promise<T> {
    // --json goes before `--`: what follows it is the service's command.
    const dash = args.indexOf('--');
    const withJson = dash < 0 ? [...args, '--json'] : [...args.slice(0, dash), '--json', ...args.slice(dash)];
    const r = await this.run(withJson, timeoutMs);
    assert.equal(r.code, 0, `tend ${args.join(' ')} --json exited ${r.code}: ${r.stderr}`);
    try {
      return JSON.parse(r.stdout) as T;
    } catch {
      assert.fail(`tend ${args.join(' ')} --json printed no JSON: ${JSON.stringify(r.stdout)}`);
    }
  }

  ps(): Promise<PsReport> {
    return this.json<PsReport>(['ps']);
  }

  async service(name: string): Promise<ServiceInfo> {
    const found = (await this.ps()).services.find((s) => s.name === name);
    assert.ok(found, `ps does not list ${name}`);
    return found;
  }

  async daemonPid(): Promise<number> {
    const info = await this.json<{ running: boolean; pid: number }>(['daemon', 'status']);
    assert.equal(info.running, true);
    return info.pid;
  }

  /** Live processes started under this test's token. */
  survivors(): ProcInfo[] {
    return scanProcesses({ live: true }).filter((p) => p.env.get('TEST_TOKEN') === this.token);
  }

  /** Stops the daemon (--force) and checks that nothing of this test survived; kills what did, and then fails. */
  async cleanup(): Promise<void> {
    const problems: string[] = [];
    for (const r of this.background) {
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    }
    const stop = await this.run(['daemon', 'stop', '--force'], 40_000).catch((error: unknown) => ({ code: -1, stdout: '', stderr: String(error) }));
    if (stop.code !== 0) problems.push(`tend daemon stop --force exited ${stop.code}: ${stop.stderr}`);
    for (const h of this.helpers) {
      if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGKILL');
    }
    await Promise.all(this.helpers.map((h) => withDeadline(h.exited, { what: 'a helper to exit', timeoutMs: 5000 }).catch(() => undefined)));
    const left = this.survivors();
    if (left.length > 0) problems.push(`processes outlived \`tend daemon stop\`: ${describeProcs(left).join('; ')}`);
    const daemons = daemonProcesses(this.dir);
    if (daemons.length > 0) problems.push(`a daemon (or its reaper) outlived \`tend daemon stop\`: ${describeProcs(daemons).join('; ')}`);
    for (const p of [...left, ...daemons]) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    removeDir(this.dir);
    if (problems.length > 0) assert.fail(problems.join('\n'));
  }
}

/** Runs `body` with a fresh state directory; always stops its daemon and checks for survivors. */
async function withState(body: (s: State) => Promise<void>): Promise<void> {
  const s = new State();
  let failure: Error | undefined;
  try {
    await body(s);
  } catch (error) {
    failure = error instanceof Error ? error : new Error(String(error));
  }
  try {
    await s.cleanup();
  } catch (error) {
    if (failure === undefined) failure = error instanceof Error ? error : new Error(String(error));
    else process.stderr.write(`cleanup also failed: ${String(error)}\n`);
  }
  if (failure !== undefined) throw failure;
}

/** For conditions asked of the daemon, which refuses connections while it starts or restarts. */
const DAEMON_POLL = { timeoutMs: 15_000, retryOnError: true } as const;

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.ok(address && typeof address === 'object');
  return address.port;
}

const HOLDER_SCRIPT = `require('net').createServer((c) => c.end()).listen(0, '127.0.0.1', function () { console.log('port ' + this.address().port); });`;

/** A foreign process (not tend's) listening on 127.0.0.1: its Running and its port. */
async function portHolder(s: State): Promise<{ holder: Running; port: number }> {
  const holder = new Running(process.execPath, ['-e', HOLDER_SCRIPT], { env: { PATH: s.env.PATH as string, TEST_TOKEN: s.token } });
  s.helpers.push(holder);
  await holder.waitForOutput(/port \d+\n/);
  const port = Number(/port (\d+)/.exec(holder.stdout)?.[1]);
  assert.ok(port > 0);
  return { holder, port };
}

after(() => {
  for (const p of scanProcesses()) {
    if (!(p.env.get('TEST_TOKEN') ?? '').startsWith(RUN_ID)) continue;
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  removeDir(tmp);
});

const TREE = ['sh', '-c', 'sleep 1000 & sleep 1000'];

// ------------------------------------------------------------------ usage --

test('usage errors exit 2, say what is wrong, and start no daemon', async () => {
  await withState(async (s) => {
    const cases: [string[], RegExp][] = [
      [['start', 'a', '--bogus', '--', 'true'], /unknown option --bogus/],
      [['ps', '--bogus'], /unknown option --bogus/],
      [['stop', 'a', '--timeout', 'soon'], /"soon"/],
      [['start', 'a', '--backoff', '5', '--', 'true'], /"5"/],
      [['start', 'a', '--ready', 'ftp:1', '--', 'true'], /invalid --ready "ftp:1"/],
      [['start', 'a', '--ready', 'tcp:99999', '--', 'true'], /"99999"/],
      [['start', 'a', '--ready', 'log:(', '--', 'true'], /invalid --ready/],
      [['start'], /no service name given/],
      [['status'], /no service name given/],
      [['logs'], /no service name given/],
      [['stop'], /no service named/],
      [['start', 'bad/name', '--', 'true'], /invalid service name "bad\/name"/],
      [['status', 'bad name'], /invalid service name/],
      [['start', 'a', '--force', '--', 'true'], /--force only works with --free-port/],
      [['start', 'a', '--restart', 'sometimes', '--', 'true'], /invalid --restart/],
      [['limit', '0'], /invalid limit "0"/],
      [['logs', 'a', '-n', 'x'], /invalid --lines "x"/],
      [['daemon'], /say what to do/],
      [['daemon', 'explode'], /unknown action "explode"/],
      [['stop', '--all', 'a'], /not both/],
    ];
    for (const [args, message] of cases) {
      const r = await s.run(args);
      assert.equal(r.code, 2, `tend ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      assert.match(r.stderr, message, `tend ${args.join(' ')}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, `tend ${args.join(' ')} printed a stack trace`);
    }
    const status = await s.run(['daemon', 'status']);
    assert.equal(status.code, 1, 'a usage error started the daemon');
    assert.deepEqual(daemonProcesses(s.dir), []);
  });
});

test('the commands that only report do not start a daemon', async () => {
  await withState(async (s) => {
    const ps = await s.ps();
    assert.deepEqual(ps, { daemon: false, state_dir: s.dir, services: [], limit: null });
    assert.deepEqual(await s.json(['stop', '--all']), { services: [] });
    assert.deepEqual(await s.json(['kill-all']), { killed_count: 0, killed_pids: [], services: [], dequeued: 0 });
    assert.deepEqual(await s.json(['limit']), { daemon: false });
    const status = await s.run(['daemon', 'status', '--json']);
    assert.equal(status.code, 1);
    assert.deepEqual(JSON.parse(status.stdout), { running: false, state_dir: s.dir });
    assert.deepEqual(daemonProcesses(s.dir), []);
  });
});

test('with the daemon down: ps and status say what is defined and what should run, unknown names start no daemon, and stop and delete still work', async () => {
  await withState(async (s) => {
    await s.json(['start', 'kept', ...s.mark, '--', 'sleep', '300']);
    await s.json(['start', 'idle', ...s.mark, '--', 'sleep', '300']);
    await s.json(['stop', 'idle']);
    const stopped = await s.json<{ wanted: string[] }>(['daemon', 'stop']);
    assert.deepEqual(stopped.wanted, ['kept'], '`daemon stop` should keep what ran wanted');
    assert.deepEqual(daemonProcesses(s.dir), []);

    const ps = await s.ps();
    assert.equal(ps.daemon, false);
    assert.deepEqual(ps.services.map((x) => [x.name, x.state, x.wanted, x.pid]), [['idle', 'stopped', false, null], ['kept', 'stopped', true, null]]);
    for (const service of ps.services) assertServiceShape(service, `offline ${service.name}`);
    const text = await s.run(['ps']);
    assert.match(text.stdout, /not running .*the next daemon starts kept again/);
    assert.match(text.stdout, /^idle\s+stopped/m);

    const status = await s.run(['status', 'kept', '--json']);
    assert.equal(status.code, 3, status.stderr);
    assert.equal((JSON.parse(status.stdout) as ServiceInfo).wanted, true);
    for (const args of [['status', 'nosuch'], ['stop', 'nosuch'], ['start', 'nosuch'], ['delete', 'nosuch']]) {
      const r = await s.run(args);
      assert.equal(r.code, 1, `tend ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /SERVICE_UNKNOWN.*"nosuch".*Known: idle, kept/, args.join(' '));
    }
    assert.deepEqual(daemonProcesses(s.dir), [], 'a read-only or unknown-name command started a daemon');

    // The next daemon starts what ran again, and says so.
    const started = await s.json<{ started: boolean; restored: string[] }>(['daemon', 'start']);
    assert.deepEqual([started.started, started.restored], [true, ['kept']]);
    await waitFor(async () => ((await s.service('kept')).state === 'running' ? true : undefined), { what: 'kept to run again', ...DAEMON_POLL });
    assert.equal((await s.service('idle')).state, 'stopped');

    // Stopped and deleted with the daemon down: the next daemon starts nothing.
    await s.json(['daemon', 'stop']);
    const offlineStop = await s.json<{ services: ServiceInfo[] }>(['stop', 'kept']);
    assert.deepEqual(offlineStop.services.map((x) => [x.name, x.wanted]), [['kept', false]]);
    const deleted = await s.json<{ deleted: ServiceInfo }>(['delete', 'idle']);
    assert.equal(deleted.deleted.name, 'idle');
    const left = await s.ps();
    assert.deepEqual([left.daemon, left.services.map((x) => [x.name, x.wanted])], [false, [['kept', false]]]);
    assert.deepEqual(daemonProcesses(s.dir), [], 'stop or delete with the daemon down started one');
    const again = await s.json<{ restored: string[] }>(['daemon', 'start']);
    assert.deepEqual(again.restored, []);
    assert.equal((await s.service('kept')).state, 'stopped');
  });
});

// ----------------------------------------------------------------- daemon --

test('daemon start, status and stop', async () => {
  await withState(async (s) => {
    const first = await s.json<{ running: boolean; started: boolean; pid: number; socket: string; version: string }>(['daemon', 'start']);
    assert.equal(first.running, true);
    assert.equal(first.started, true);
    assert.equal(first.socket, join(s.dir, 'daemon.sock'));
    assert.ok(!isGone(first.pid), `the daemon ${first.pid} is not alive`);
    assert.equal(daemonProcesses(s.dir).filter((p) => p.pid === first.pid).length, 1, 'the daemon in /proc is not the one reported');

    const again = await s.json<{ started: boolean; pid: number }>(['daemon', 'start']);
    assert.equal(again.started, false);
    assert.equal(again.pid, first.pid);

    const status = await s.json<{ running: boolean; pid: number; services: number; uptime_ms: number; rss_bytes: number; socket: string }>(['daemon', 'status']);
    assert.equal(status.running, true);
    assert.equal(status.pid, first.pid);
    assert.equal(status.services, 0);
    assert.equal(typeof status.uptime_ms, 'number');
    assert.ok(status.rss_bytes > 0);
    const info = JSON.parse(readFileSync(join(s.dir, 'daemon.json'), 'utf8')) as { pid: number };
    assert.equal(info.pid, first.pid, 'daemon.json names another pid');

    const stopped = await s.json<{ running: boolean; stopped: boolean; pid: number; killed: boolean }>(['daemon', 'stop']);
    assert.equal(stopped.stopped, true);
    assert.equal(stopped.running, false);
    assert.equal(stopped.pid, first.pid);
    assert.equal(stopped.killed, false);
    assert.equal(isGone(first.pid), true, 'the daemon is alive after `tend daemon stop`');
    const after = await s.run(['daemon', 'status']);
    assert.equal(after.code, 1);
    const twice = await s.json<{ stopped: boolean; running: boolean }>(['daemon', 'stop']);
    assert.deepEqual([twice.stopped, twice.running], [false, false]);
  });
});

// ------------------------------------------------------------- JSON casing --

const SNAKE_CASE = /^[a-z0-9]+(_[a-z0-9]+)*$/;
/** Keys whose value is the user's data (a definition's environment), not tend's words. */
const USER_DATA_KEYS = new Set(['env']);

/** Every key of `value` (nested objects and arrays too) that is not snake_case, as a path; `seen` collects the paths walked. */
function nonSnakeKeys(value: unknown, path: string, seen: Set<string>): string[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => nonSnakeKeys(item, `${path}[${i}]`, seen));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, item]) => {
    const at = `${path}.${key}`;
    seen.add(at.replace(/\[\d+\]/g, '[]'));
    const own = SNAKE_CASE.test(key) ? [] : [at];
    return USER_DATA_KEYS.has(key) ? own : [...own, ...nonSnakeKeys(item, at, seen)];
  });
}

test('the casing walker finds a camelCase key at any depth (negative control)', () => {
  const seen = new Set<string>();
  assert.deepEqual(nonSnakeKeys({ ok_key: 1, a: [{ b: { lastExit: null } }], Upper: 2 }, '$', seen), ['$.a[0].b.lastExit', '$.Upper']);
  assert.deepEqual(nonSnakeKeys({ env: { MY_VAR: '1', camelVar: 'x' } }, '$', seen), [], 'the env map is user data');
  assert.ok(seen.has('$.a[].b.lastExit'));
});

test('every --json document is snake_case, nested objects and arrays included', async () => {
  await withState(async (s) => {
    const documents: [string, unknown][] = [];
    /** Status commands exit non-zero for what is not running (3, 1) and still print their document. */
    const print = async (args: string[], exitCode = 0): Promise<void> => {
      const dash = args.indexOf('--');
      const withJson = dash < 0 ? [...args, '--json'] : [...args.slice(0, dash), '--json', ...args.slice(dash)];
      const r = await s.run(withJson);
      assert.equal(r.code, exitCode, `tend ${withJson.join(' ')} exited ${r.code}: ${r.stderr}`);
      documents.push([`tend ${withJson.join(' ')}`, JSON.parse(r.stdout) as unknown]);
    };
    await print(['daemon', 'start']);
    await print(['daemon', 'status']);
    await print(['start', 'tree', ...s.mark, '--', ...TREE]);
    await print(['start', 'tree', ...s.mark, '--', ...TREE]); // already running
    // One that ended on its own, so that its last exit (a nested object) is printed.
    const quitter = await s.run(['start', 'quitter', '--restart', 'never', ...s.mark, '--', 'sh', '-c', 'exit 3']);
    assert.ok(quitter.code === 0 || quitter.code === 1, `tend start quitter exited ${quitter.code}: ${quitter.stderr}`);
    await waitFor(async () => (await s.service('quitter')).last_exit !== null, { what: 'quitter to have exited', ...DAEMON_POLL });
    await print(['ps']);
    await print(['status', 'quitter'], 3);
    await print(['status', 'tree']);
    await print(['limit']);
    await print(['limit', '7']);
    await print(['restart', 'tree']);
    await print(['kill-all']);
    await print(['stop', '--all']);
    await print(['delete', 'quitter']);
    await print(['recover']);
    await print(['detect']);
    await print(['daemon', 'stop']);
    await print(['daemon', 'status'], 1);

    const seen = new Set<string>();
    const offences = documents.flatMap(([what, document]) => nonSnakeKeys(document, '$', seen).map((key) => `${what}: ${key}`));
    assert.deepEqual(offences, [], 'keys that are not snake_case');
    // The walk reached the nested documents it is meant to check.
    for (const path of ['$.services[].last_exit.code', '$.service.started_at', '$.limit.active_pids', '$.state_dir', '$.killed_pids', '$.parent_death_signal.available', '$.dry_run', '$.old_limit']) {
      assert.ok(seen.has(path), `no document had ${path}; walked: ${[...seen].sort().join(' ')}`);
    }
  });
});

// ---------------------------------------------------------- start and stop --

test('start, ps, status, stop: JSON shapes, PID file, and the whole tree is gone after stop', async () => {
  await withState(async (s) => {
    const report = await s.json<StartReport>(['start', 'tree', ...s.mark, '--', ...TREE]);
    assert.deepEqual(Object.keys(report).sort(), ['already_running', 'freed', 'service']);
    assert.equal(report.already_running, false);
    assert.deepEqual(report.freed, []);
    assertServiceShape(report.service, 'start report');
    assert.equal(report.service.name, 'tree');
    assert.equal(report.service.state, 'running');
    assert.equal(report.service.command, 'sh');
    assert.deepEqual(report.service.args, TREE.slice(1));
    assert.equal(report.service.restart, 'on-failure');
    assert.equal(report.service.unresponsive, false, 'a service that was just started (a shell and two sleeps) is reported unresponsive');
    assert.equal(report.service.log, join(s.dir, 'logs', 'tree.log'));
    const pid = report.service.pid as number;
    assert.ok(!isGone(pid));

    // The shell's two sleeps join the tree.
    const members = await waitFor(async () => {
      const info = await s.service('tree');
      return info.pids.length === 3 ? info.pids : undefined;
    }, { what: 'the tree to have 3 members', ...DAEMON_POLL });
    const seen = s.survivors().map((p) => p.pid).sort((a, b) => a - b);
    assert.deepEqual([...members].sort((a, b) => a - b), seen, 'ps pids are not the processes carrying the token');

    const ps = await s.ps();
    assert.equal(ps.daemon, true);
    assert.equal(ps.state_dir, s.dir);
    assert.equal(ps.services.length, 1);
    for (const svc of ps.services) assertServiceShape(svc, 'ps');
    assert.ok(ps.limit);
    assertLimitShape(ps.limit);
    assert.deepEqual(ps.limit.active_pids, [pid]);

    // The PID file while it runs.
    const pidFile = join(s.dir, 'run', 'tree.pid');
    assert.equal(readFileSync(pidFile, 'utf8').trim(), String(pid));
    assert.ok(existsSync(join(s.dir, 'services', 'tree.json')), 'the definition is not stored');

    // status: 0 while running.
    const status = await s.run(['status', 'tree', '--json']);
    assert.equal(status.code, 0, status.stderr);
    const info = JSON.parse(status.stdout) as ServiceInfo;
    assertServiceShape(info, 'status');
    assert.equal(info.state, 'running');
    assert.equal(info.pid, pid);
    const text = await s.run(['status', 'tree']);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /state:\s+running/);
    assert.match(text.stdout, new RegExp(`pid:\\s+${pid}\\b`));
    assert.equal(info.unresponsive, false);

    // start again: already running, nothing done.
    const again = await s.json<StartReport>(['start', 'tree', ...s.mark, '--', ...TREE]);
    assert.equal(again.already_running, true);
    assert.equal(again.service.pid, pid);

    const stopped = await s.json<{ services: ServiceInfo[] }>(['stop', 'tree']);
    assert.equal(stopped.services.length, 1);
    const svc = stopped.services[0] as ServiceInfo;
    assertServiceShape(svc, 'stop');
    assert.equal(svc.state, 'stopped');
    assert.equal(svc.last_exit?.signal, 'SIGTERM');
    assert.deepEqual(describeProcs(s.survivors()), [], 'part of the tree outlived `tend stop`');
    for (const p of members) assert.equal(isGone(p), true, `pid ${p} of the tree is alive after stop`);
    assert.equal(existsSync(pidFile), false, 'the PID file outlived the service');

    // status: 3 when not running; the daemon still knows it.
    const after = await s.run(['status', 'tree', '--json']);
    assert.equal(after.code, 3, after.stderr);
    assert.equal((JSON.parse(after.stdout) as ServiceInfo).state, 'stopped');
    assert.equal((await s.service('tree')).state, 'stopped');

    // start NAME without a command starts the stored definition again.
    const restarted = await s.json<StartReport>(['start', 'tree']);
    assert.equal(restarted.service.state, 'running');
    assert.notEqual(restarted.service.pid, pid);
  });
});

test('stop --all stops every service', async () => {
  await withState(async (s) => {
    for (const name of ['a1', 'a2']) await s.json<StartReport>(['start', name, ...s.mark, '--', 'sleep', '1000']);
    assert.equal(s.survivors().length, 2);
    const r = await s.json<{ services: ServiceInfo[] }>(['stop', '--all']);
    assert.deepEqual(r.services.map((x) => x.name).sort(), ['a1', 'a2']);
    for (const svc of r.services) {
      assertServiceShape(svc, 'stop --all');
      assert.equal(svc.state, 'stopped');
    }
    assert.deepEqual(describeProcs(s.survivors()), []);
    const ps = await s.ps();
    assert.deepEqual(ps.services.map((x) => x.state), ['stopped', 'stopped']);
  });
});

test('restart gives a new tree and ends the old one; delete forgets the service and keeps its log', async () => {
  await withState(async (s) => {
    await s.json<StartReport>(['start', 'r', ...s.mark, '--', 'sh', '-c', 'echo hello-r; sleep 1000 & sleep 1000']);
    const old = await waitFor(async () => {
      const info = await s.service('r');
      return info.pids.length === 3 ? info : undefined;
    }, { what: 'the tree of r', ...DAEMON_POLL });
    const report = await s.json<StartReport>(['restart', 'r']);
    assert.equal(report.already_running, false);
    assertServiceShape(report.service, 'restart');
    assert.equal(report.service.state, 'running');
    assert.equal(report.service.restarts, 0);
    assert.notEqual(report.service.pid, old.pid);
    for (const p of old.pids) assert.equal(isGone(p), true, `pid ${p} of the old tree is alive after restart`);
    assert.ok(s.survivors().every((p) => !old.pids.includes(p.pid)));
    assert.ok(s.survivors().some((p) => p.pid === report.service.pid), 'the new pid does not carry the token');

    const logPath = join(s.dir, 'logs', 'r.log');
    await waitFor(() => existsSync(logPath) && readFileSync(logPath, 'utf8').includes('hello-r'), { what: 'r to write its log' });
    const deleted = await s.json<{ deleted: ServiceInfo }>(['delete', 'r']);
    assertServiceShape(deleted.deleted, 'delete');
    assert.equal(deleted.deleted.name, 'r');
    assert.equal(deleted.deleted.state, 'stopped');
    assert.deepEqual(describeProcs(s.survivors()), []);
    assert.equal(existsSync(join(s.dir, 'services', 'r.json')), false, 'the definition outlived delete');
    assert.equal(existsSync(join(s.dir, 'run', 'r.pid')), false);
    assert.ok(existsSync(logPath), 'delete removed the log');
    const status = await s.run(['status', 'r']);
    assert.equal(status.code, 1);
    assert.match(status.stderr, /SERVICE_UNKNOWN/);
    assert.deepEqual((await s.ps()).services, []);
    // Its log can still be read.
    const logs = await s.run(['logs', 'r']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /hello-r/);
  });
});

// --------------------------------------------------------- failed operations --

test('failed operations exit 1: unknown service, readiness timeout', async () => {
  await withState(async (s) => {
    for (const args of [['status', 'nope'], ['stop', 'nope'], ['restart', 'nope'], ['delete', 'nope'], ['start', 'nope']]) {
      const r = await s.run(args);
      assert.equal(r.code, 1, `tend ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      assert.match(r.stderr, /SERVICE_UNKNOWN/, `tend ${args.join(' ')}`);
      assert.match(r.stderr, /"nope"/);
    }
    const logs = await s.run(['logs', 'nope']);
    assert.equal(logs.code, 1, logs.stderr);
    assert.match(logs.stderr, /SERVICE_UNKNOWN/);

    const port = await freePort();
    const r = await s.run(['start', 'slow', '--ready', `tcp:${port}`, '--ready-timeout', '300ms', ...s.mark, '--', ...TREE]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /SERVICE_NOT_READY/);
    assert.deepEqual(describeProcs(s.survivors()), [], 'a service that did not get ready left processes');
    const status = await s.run(['status', 'slow', '--json']);
    assert.equal(status.code, 3);
    const info = JSON.parse(status.stdout) as ServiceInfo;
    assert.equal(info.state, 'failed');
    assert.match(info.reason ?? '', /not ready/);
    assert.equal(existsSync(join(s.dir, 'run', 'slow.pid')), false);
  });
});

test('a readiness check that passes: start returns once ready', async () => {
  await withState(async (s) => {
    const report = await s.json<StartReport>(['start', 'ready', '--ready', 'log:^up and ready$', ...s.mark, '--', 'sh', '-c', 'echo "up and ready"; exec sleep 1000']);
    assert.equal(report.service.state, 'running');
    assert.equal(report.service.ready, true);
  });
});

test('restart policy with backoff gives up: state failed, reason mentions the restarts', async () => {
  await withState(async (s) => {
    const r = await s.run(['start', 'crash', '--restart', 'always', '--backoff', '100ms', '--max-restarts', '2', ...s.mark, '--', 'sh', '-c', 'exit 1']);
    // It may already have exited by the time start answers; either way start ran it.
    assert.ok(r.code === 0 || r.code === 1, `start exited ${r.code}: ${r.stderr}`);
    const info = await waitFor(async () => {
      const svc = await s.service('crash');
      return svc.state === 'failed' ? svc : undefined;
    }, { what: 'crash to end in state failed', ...DAEMON_POLL });
    assertServiceShape(info, 'failed service');
    assert.equal(info.restarts, 2);
    assert.match(info.reason ?? '', /restart/i);
    assert.equal(info.last_exit?.code, 1);
    const status = await s.run(['status', 'crash']);
    assert.equal(status.code, 3);
    assert.match(status.stdout, /state:\s+failed/);
  });
});

// --------------------------------------------------------------------- logs --

test('logs -n N prints the last lines; logs -f follows new output until SIGINT', async () => {
  await withState(async (s) => {
    const work = join(tmp, `w-${s.token}`);
    mkdirSync(work);
    const script = 'for i in 1 2 3 4 5; do echo line$i; done; while [ ! -e go ]; do sleep 0.05; done; echo second-batch; exec sleep 1000';
    await s.json<StartReport>(['start', 'talk', '-C', work, ...s.mark, '--', 'sh', '-c', script]);
    await waitFor(async () => {
      const r = await s.run(['logs', 'talk', '-n', '2']);
      return r.code === 0 && r.stdout === 'line4\nline5\n';
    }, { what: 'logs -n 2 to print the last two lines', ...DAEMON_POLL });
    const all = await s.run(['logs', 'talk']);
    assert.equal(all.stdout, 'line1\nline2\nline3\nline4\nline5\n');
    const none = await s.run(['logs', 'talk', '-n', '0']);
    assert.equal(none.code, 0);
    assert.equal(none.stdout, '');

    const follower = s.spawn(['logs', 'talk', '-n', '1', '-f']);
    s.background.push(follower);
    await follower.waitForOutput(/^line5\n/);
    writeFileSync(join(work, 'go'), '');
    await follower.waitForOutput(/second-batch\n/);
    assert.equal(follower.stdout, 'line5\nsecond-batch\n');
    follower.child.kill('SIGINT');
    const r = await follower.result();
    assert.equal(r.signal, null, 'logs -f died of SIGINT instead of ending');
    assert.equal(r.code, 0);
  });
});

test('logs reads across rotated files, with the daemon down', async () => {
  await withState(async (s) => {
    const logs = join(s.dir, 'logs');
    mkdirSync(logs, { recursive: true, mode: 0o700 });
    writeFileSync(join(logs, 'rot.log.2'), 'oldest1\noldest2\n');
    writeFileSync(join(logs, 'rot.log.1'), 'old1\nold2\nold3\n');
    writeFileSync(join(logs, 'rot.log'), 'new1\nnew2\n');
    const r = await s.run(['logs', 'rot', '-n', '4']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'old2\nold3\nnew1\nnew2\n');
    const more = await s.run(['logs', 'rot', '-n', '6']);
    assert.equal(more.stdout, 'oldest2\nold1\nold2\nold3\nnew1\nnew2\n');
    assert.equal((await s.run(['daemon', 'status'])).code, 1, 'tend logs started the daemon');
  });
});

// -------------------------------------------------------- limit and kill-all --

test('limit shows and sets the limit; it is kept in settings.json', async () => {
  await withState(async (s) => {
    const changed = await s.json<LimitStatus>(['limit', '3']);
    assertLimitShape(changed);
    assert.equal(changed.old_limit, 16);
    assert.equal(changed.new_limit, 3);
    assert.equal(changed.max_allowed, 3);
    assert.deepEqual(JSON.parse(readFileSync(join(s.dir, 'settings.json'), 'utf8')), { maxConcurrent: 3 });
    const started = await s.json<StartReport>(['start', 'one', ...s.mark, '--', 'sleep', '1000']);
    const shown = await s.json<LimitStatus>(['limit']);
    assertLimitShape(shown);
    assert.equal(shown.max_allowed, 3);
    assert.equal(shown.active_processes, 1);
    assert.deepEqual(shown.active_pids, [started.service.pid]);
    assert.equal(shown.can_start_new, true);
    assert.equal(shown.queued, 0);
    assert.equal(shown.old_limit, undefined);
    const text = await s.run(['limit']);
    assert.match(text.stdout, /^1\/3 running/);
    // A new daemon reads it back.
    await s.json(['daemon', 'stop']);
    assert.equal((await s.json<LimitStatus>(['limit', '4'])).old_limit, 3);
  });
});

test('limit and queue under load: --no-queue refuses, a queued start waits and runs once a slot frees', async () => {
  await withState(async (s) => {
    assert.equal((await s.json<LimitStatus>(['limit', '2'])).new_limit, 2);
    const q1 = await s.json<StartReport>(['start', 'q1', ...s.mark, '--', 'sleep', '1000']);
    const q2 = await s.json<StartReport>(['start', 'q2', ...s.mark, '--', 'sleep', '1000']);

    const refused = await s.run(['start', 'q3', '--no-queue', ...s.mark, '--', 'sleep', '1000']);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /LIMIT_REACHED/);
    assert.equal(s.survivors().length, 2);

    const waiting = s.spawn(['start', 'q3', '--json', ...s.mark, '--', 'sleep', '1000']);
    s.background.push(waiting);
    await waitFor(async () => (await s.service('q3')).state === 'queued', { what: 'q3 to be queued', ...DAEMON_POLL });
    const limit = await s.json<LimitStatus>(['limit']);
    assert.equal(limit.queued, 1);
    assert.equal(limit.can_start_new, false);
    assert.deepEqual(limit.active_pids, [q1.service.pid, q2.service.pid].sort((a, b) => (a as number) - (b as number)));
    assert.equal(waiting.child.exitCode, null, `the queued start returned while q3 was queued: ${waiting.stdout} ${waiting.stderr}`);
    assert.equal(s.survivors().length, 2, 'q3 runs while queued');

    await s.json(['stop', 'q1']);
    const r = await waiting.result();
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as StartReport;
    assert.equal(report.service.name, 'q3');
    assert.equal(report.service.state, 'running');
    const ps = await s.ps();
    assert.deepEqual(ps.services.map((x) => [x.name, x.state]).sort(), [['q1', 'stopped'], ['q2', 'running'], ['q3', 'running']]);
  });
});

test('a queued start says so on stderr at once; Ctrl-C withdraws it, and it never starts, even once the slot frees', async () => {
  await withState(async (s) => {
    await s.json(['limit', '1']);
    await s.json(['start', 'a', ...s.mark, '--', 'sleep', '1000']);
    const waiting = s.spawn(['start', 'b', '--json', ...s.mark, '--', 'sleep', '1000']);
    s.background.push(waiting);
    await waiting.waitForOutput(/b: queued, 1\/1 running, 1st in line; waiting \(Ctrl-C cancels\)\n/, 15_000, 'stderr');
    assert.equal(waiting.stdout, '', 'the queued line went to stdout, where --json prints its one document');
    waiting.child.kill('SIGINT');
    const ended = await withDeadline(waiting.exited, { what: 'the queued start to end on SIGINT', timeoutMs: 15_000 });
    assert.ok(ended.signal === 'SIGINT' || ended.code === 130, `tend start was not ended by Ctrl-C: ${JSON.stringify(ended)}`);
    await waitFor(async () => (await s.service('b')).state === 'stopped', { what: 'b to be withdrawn', ...DAEMON_POLL });
    const b = await s.service('b');
    assert.match(b.reason ?? '', /withdrawn: the client went away/);
    const stored = JSON.parse(readFileSync(join(s.dir, 'services', 'b.json'), 'utf8')) as { wanted: boolean };
    assert.equal(stored.wanted, false, 'a withdrawn service is not wanted: a new daemon would not start it');
    assert.equal((await s.json<LimitStatus>(['limit'])).queued, 0);

    await s.json(['stop', 'a']);
    // A start still queued is granted the slot by the stop itself: by now it would be starting or running.
    const limit = await s.json<LimitStatus>(['limit']);
    assertLimitShape(limit);
    assert.deepEqual({ active: limit.active_processes, queued: limit.queued }, { active: 0, queued: 0 });
    assert.equal((await s.service('b')).state, 'stopped');
    assert.deepEqual(s.survivors().map((p) => p.cmdline), [], 'b runs after all');
  });
});

test('kill-all kills every tree at once and reports exactly the pids that lived', async () => {
  await withState(async (s) => {
    await s.json<StartReport>(['start', 'k1', ...s.mark, '--', ...TREE]);
    await s.json<StartReport>(['start', 'k2', ...s.mark, '--', 'sleep', '1000']);
    const ps = await waitFor(async () => {
      const p = await s.ps();
      return p.services.find((x) => x.name === 'k1')?.pids.length === 3 ? p : undefined;
    }, { what: 'the tree of k1', ...DAEMON_POLL });
    const before = ps.services.flatMap((x) => x.pids).sort((a, b) => a - b);
    assert.deepEqual(before, s.survivors().map((p) => p.pid).sort((a, b) => a - b), 'ps pids are not the processes with the token');
    assert.equal(before.length, 4);

    const report = await s.json<{ killed_count: number; killed_pids: number[]; services: string[]; dequeued: number }>(['kill-all']);
    assert.deepEqual(Object.keys(report).sort(), ['dequeued', 'killed_count', 'killed_pids', 'services']);
    assert.equal(report.killed_count, 4);
    assert.deepEqual(report.killed_pids, before);
    assert.deepEqual(report.services, ['k1', 'k2']);
    assert.equal(report.dequeued, 0);
    assert.deepEqual(describeProcs(s.survivors()), [], 'processes outlived kill-all');
    const after = await s.ps();
    assert.equal(after.daemon, true, 'kill-all stopped the daemon');
    assert.deepEqual(after.services.map((x) => x.state), ['stopped', 'stopped']);
    assert.equal((await s.run(['daemon', 'status'])).code, 0);
  });
});

test('20 concurrent starts from a cold daemon all succeed', async () => {
  await withState(async (s) => {
    // Raise the limit without starting the daemon: the layout keeps it in settings.json.
    writeFileSync(join(s.dir, 'settings.json'), `${JSON.stringify({ maxConcurrent: 50 })}\n`);
    assert.deepEqual(daemonProcesses(s.dir), []);
    const names = Array.from({ length: 20 }, (_, i) => `s${i + 1}`);
    const runs = names.map((name) => s.spawn(['start', name, '--json', ...s.mark, '--', 'sleep', '1000']));
    s.background.push(...runs);
    const results = await Promise.all(runs.map((r) => r.result(90_000)));
    results.forEach((r, i) => {
      assert.equal(r.code, 0, `start ${names[i]} exited ${r.code}: ${r.stderr}`);
      assert.equal((JSON.parse(r.stdout) as StartReport).service.state, 'running');
    });
    const ps = await s.ps();
    assert.equal(ps.services.length, 20);
    assert.deepEqual(ps.services.map((x) => x.name).sort(), [...names].sort());
    assert.ok(ps.services.every((x) => x.state === 'running'), JSON.stringify(ps.services.map((x) => [x.name, x.state])));
    assert.equal(new Set(ps.services.map((x) => x.pid)).size, 20);
    assert.equal(s.survivors().length, 20);
    assert.equal(ps.limit?.max_allowed, 50);
    assert.equal(ps.limit?.active_processes, 20);
    const daemons = daemonProcesses(s.dir).filter((p) => isDaemonCmdline(p.cmdline));
    assert.equal(daemons.length, 1, `not exactly one daemon: ${describeProcs(daemons).join('; ')}`);
  });
});

// ------------------------------------------------------------------- ports --

test('a port held by a foreign process: refused, refused with --free-port, freed with --free-port --force', async () => {
  await withState(async (s) => {
    const { holder, port } = await portHolder(s);
    const holderPid = holder.child.pid as number;
    const args = ['start', 'web', '--port', String(port), ...s.mark, '--', 'sleep', '1000'];

    const refused = await s.run(args);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /PORT_IN_USE/);
    assert.match(refused.stderr, new RegExp(`pid ${holderPid}\\b`));
    assert.ok(!isGone(holderPid));

    const notOurs = await s.run([...args.slice(0, 4), '--free-port', ...args.slice(4)]);
    assert.equal(notOurs.code, 1, notOurs.stderr);
    assert.match(notOurs.stderr, /PORT_IN_USE/);
    assert.match(notOurs.stderr, /not tend's/);
    assert.ok(!isGone(holderPid), '--free-port without --force stopped a foreign process');
    assert.equal(s.survivors().filter((p) => p.pid !== holderPid).length, 0, 'the service ran although its port was held');

    const freed = await s.json<StartReport>([...args.slice(0, 4), '--free-port', '--force', ...args.slice(4)]);
    assert.equal(freed.service.state, 'running');
    assert.deepEqual(freed.service.ports, [port]);
    assert.equal(freed.freed.length, 1);
    assert.equal(freed.freed[0]?.pid, holderPid);
    assert.equal(freed.freed[0]?.port, port);
    assert.equal(freed.freed[0]?.tend, false);
    const exit = await withDeadline(holder.exited, { what: 'the port holder to exit' });
    assert.equal(exit.signal, 'SIGTERM');
  });
});

test('--free-port --force in text output names the pid it stopped', async () => {
  await withState(async (s) => {
    const { holder, port } = await portHolder(s);
    const r = await s.run(['start', 'web', '--port', String(port), '--free-port', '--force', ...s.mark, '--', 'sleep', '1000']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`freed port ${port}: stopped pid ${holder.child.pid as number}\\b`));
    assert.match(r.stdout, /not tend's/);
    // The service line: NAME: STATE pid N, and a healthy new service is not "unresponsive".
    assert.match(r.stdout, /^web: running pid \d+$/m);
  });
});

// ------------------------------------------------------ the daemon killed --

test('the daemon SIGKILLed: its services die with it, and the next daemon starts them again', async () => {
  await withState(async (s) => {
    await s.json<StartReport>(['start', 'd1', ...s.mark, '--', ...TREE]);
    await s.json<StartReport>(['start', 'd2', ...s.mark, '--', 'sleep', '1000']);
    await s.json<StartReport>(['start', 'd3', ...s.mark, '--', 'sleep', '1000']);
    await s.json(['stop', 'd3']);
    const before = await waitFor(async () => {
      const p = await s.ps();
      return p.services.find((x) => x.name === 'd1')?.pids.length === 3 ? p : undefined;
    }, { what: 'the tree of d1', ...DAEMON_POLL });
    const oldPids = new Map(before.services.map((x) => [x.name, x.pid]));
    assert.equal(s.survivors().length, 4);
    const daemonPid = await s.daemonPid();

    process.kill(daemonPid, 'SIGKILL');
    await waitFor(() => s.survivors().length === 0, { what: 'the reaper to kill every service tree' });
    await waitFor(() => isGone(daemonPid), { what: 'the daemon to die' });
    await waitFor(() => daemonProcesses(s.dir).length === 0, { what: 'the reaper to exit' });
    assert.equal((await s.run(['daemon', 'status'])).code, 1);

    const started = await s.json<{ started: boolean; pid: number }>(['daemon', 'start']);
    assert.equal(started.started, true);
    assert.notEqual(started.pid, daemonPid);
    const after = await waitFor(async () => {
      const p = await s.ps();
      const byName = new Map(p.services.map((x) => [x.name, x]));
      return byName.get('d1')?.state === 'running' && byName.get('d2')?.state === 'running' ? byName : undefined;
    }, { what: 'd1 and d2 to run again', ...DAEMON_POLL });
    for (const name of ['d1', 'd2']) {
      const svc = after.get(name) as ServiceInfo;
      assert.notEqual(svc.pid, oldPids.get(name), `${name} has its old pid`);
      assert.ok(svc.pid !== null && !isGone(svc.pid));
    }
    assert.equal(after.get('d3')?.state, 'stopped', 'a stopped service was started again');
    const d1Tree = await waitFor(async () => ((await s.service('d1')).pids.length === 3 ? true : undefined), { what: 'the new tree of d1', ...DAEMON_POLL });
    assert.ok(d1Tree);
    assert.equal(s.survivors().length, 4);
  });
});

test('the daemon SIGKILLed while `tend start` waits for readiness: nothing leaks', async () => {
  await withState(async (s) => {
    const port = await freePort();
    const waiting = s.spawn(['start', 'never', '--ready', `tcp:${port}`, '--ready-timeout', '10m', ...s.mark, '--', ...TREE]);
    s.background.push(waiting);
    await waitFor(() => s.survivors().length === 3, { what: 'the service tree to be spawned (waiting for readiness)' });
    const status = await s.run(['status', 'never', '--json']);
    assert.equal(status.code, 3);
    assert.equal((JSON.parse(status.stdout) as ServiceInfo).state, 'starting');
    const daemonPid = await s.daemonPid();

    process.kill(daemonPid, 'SIGKILL');
    const r = await waiting.result();
    assert.equal(r.code, 1, `tend start exited ${r.code} when its daemon was killed: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'a stack trace');
    await waitFor(() => s.survivors().length === 0, { what: 'the reaper to kill the half-started service' });
    await waitFor(() => daemonProcesses(s.dir).length === 0, { what: 'the daemon and its reaper to be gone' });
  });
});
