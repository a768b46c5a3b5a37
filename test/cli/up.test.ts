// `tend up` (foreground and -d), `tend start NAME -f FILE`, and bad config
// files, driven through the bundled CLI. Every service carries TEST_TOKEN so
// that what survives can be found in /proc without trusting tend.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scanProcesses } from '../helpers/proc-scan.js';
import { removeDir, repoRoot, Running, run } from '../helpers/unit-local.js';
import { waitFor } from '../helpers/wait.js';

const TEND = join(repoRoot, 'dist/src/bin/tend.js');
const RUN_ID = randomBytes(6).toString('hex');
const tmp = mkdtempSync(join(tmpdir(), 'tup-'));
const NODE = process.execPath;

after(() => {
  for (const p of scanProcesses()) {
    const home = p.env.get('TEND_HOME') ?? '';
    if (!(p.env.get('TEST_TOKEN') ?? '').startsWith(RUN_ID) && !home.startsWith(tmp)) continue;
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  removeDir(tmp);
});

let count = 0;
interface Case {
  readonly dir: string;
  readonly home: string;
  readonly token: string;
  readonly env: NodeJS.ProcessEnv;
}

function newCase(): Case {
  const dir = join(tmp, String(++count));
  const home = join(dir, 'state');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const token = `${RUN_ID}-${count}`;
  return { dir, home, token, env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: dir, TEND_HOME: home, LANG: 'C' } };
}

function tend(c: Case, args: readonly string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(NODE, [TEND, ...args], { env: c.env, cwd: c.dir }, timeoutMs);
}

/** Live processes of this case: its services (TEST_TOKEN) and its daemon (TEND_HOME). */
function survivors(c: Case): string[] {
  return scanProcesses({ live: true })
    .filter((p) => p.env.get('TEST_TOKEN') === c.token || p.env.get('TEND_HOME') === c.home)
    .map((p) => `${p.pid} ${p.cmdline}`);
}

async function finish(c: Case): Promise<void> {
  await tend(c, ['daemon', 'stop', '--force']);
  const left = await waitFor(() => (survivors(c).length === 0 ? 'none' : undefined), { what: 'every process of the case to be gone', timeoutMs: 15_000 }).catch(() => survivors(c).join('; '));
  assert.equal(left, 'none', `left running: ${left}`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

const serverScript = (port: number): string =>
  `require('net').createServer((c) => c.end()).listen(${port}, '127.0.0.1', () => console.log('listening on ${port}')); setInterval(() => {}, 1 << 30);`;

function stackFile(c: Case, port: number): string {
  const file = join(c.dir, 'tend.yaml');
  writeFileSync(
    file,
    [
      'services:',
      '  api:',
      `    command: ${JSON.stringify(NODE)}`,
      `    args: ["-e", ${JSON.stringify(serverScript(port))}]`,
      `    env: { TEST_TOKEN: "${c.token}" }`,
      `    ports: [${port}]`,
      `    ready: { tcp: ${port}, timeout: 20s }`,
      '  worker:',
      '    command: [/bin/sh, -c, "echo worker up; exec sleep 1000"]',
      `    env: { TEST_TOKEN: "${c.token}" }`,
      '    depends_on: [api]',
      '  flaky:',
      '    command: [/bin/sh, -c, "echo flaky run; exit 1"]',
      `    env: { TEST_TOKEN: "${c.token}" }`,
      '    restart: always',
      '    restart_limit: { max: 50, backoff: 100ms, max_backoff: 200ms }',
      '',
    ].join('\n'),
  );
  return file;
}

test('tend up runs the stack in the foreground: prefixed output, depends_on waits for readiness, Ctrl-C leaves nothing', async () => {
  const c = newCase();
  const port = await freePort();
  stackFile(c, port);
  const up = new Running(NODE, [TEND, 'up'], { env: c.env, cwd: c.dir });
  try {
    await up.waitForOutput(/^worker +\| worker up$/m, 20_000);
    await up.waitForOutput(/^api +\| listening on \d+$/m, 20_000);
    // flaky is restarted with backoff: at least two runs were shown.
    await waitFor(() => (up.stdout.match(/^flaky +\| flaky run$/gm)?.length ?? 0) >= 2 || undefined, { what: 'flaky to be restarted', timeoutMs: 20_000 });
    await up.waitForOutput(/^tend +\| flaky: backoff \(exit code 1; restart \d+ in \d+ ms\)$/m);
    // The worker started only once the api was running (ready).
    const apiRunning = up.stdout.search(/^tend +\| api: running/m);
    const workerStarting = up.stdout.search(/^tend +\| worker: starting/m);
    assert.ok(apiRunning >= 0 && workerStarting > apiRunning, `api running before worker starting:\n${up.stdout}`);
    assert.ok(!up.stdout.includes(String.fromCharCode(27)), "no colour codes when stdout is not a terminal");
    const running = survivors(c);
    assert.ok(running.length >= 2, `the services run: ${running.join('; ')}`);
    up.child.kill('SIGINT');
    const result = await up.result(30_000);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^tend +\| stopped \(SIGINT\)$/m);
    // The worker (a dependent) is stopped before the api it depends on.
    assert.ok(result.stdout.search(/^tend +\| worker: stopped/m) < result.stdout.search(/^tend +\| api: stopped/m), result.stdout);
    assert.deepEqual(survivors(c), []);
  } finally {
    up.child.kill('SIGKILL');
    await finish(c);
  }
});

test('tend up returns when every service has ended: 0 when all exited cleanly, 1 otherwise', async () => {
  for (const [exit, expected] of [
    [0, 0],
    [3, 1],
  ] as const) {
    const c = newCase();
    writeFileSync(join(c.dir, 'tend.yaml'), `services:\n  once:\n    command: [/bin/sh, -c, "echo done; exit ${exit}"]\n    env: { TEST_TOKEN: "${c.token}" }\n    restart: never\n`);
    try {
      const result = await tend(c, ['up']);
      assert.equal(result.code, expected, `${result.stdout}${result.stderr}`);
      assert.match(result.stdout, /^once +\| done$/m);
      assert.match(result.stdout, new RegExp(`^tend +\\| once: exited \\(exit code ${exit}`, 'm'));
    } finally {
      await finish(c);
    }
  }
});

test('tend up -d hands the stack to the daemon; ps lists it; stop --all stops it', async () => {
  const c = newCase();
  const port = await freePort();
  stackFile(c, port);
  try {
    const result = await tend(c, ['up', '-d', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as { services: { name: string; state: string; pid: number | null }[]; errors: unknown[] };
    assert.deepEqual(report.errors, []);
    assert.deepEqual(report.services.map((s) => s.name), ['api', 'worker', 'flaky']);
    const byName = new Map(report.services.map((s) => [s.name, s]));
    assert.equal(byName.get('api')?.state, 'running');
    assert.equal(byName.get('worker')?.state, 'running');
    const ps = JSON.parse((await tend(c, ['ps', '--json'])).stdout) as { services: { name: string; state: string }[] };
    assert.deepEqual(ps.services.map((s) => s.name).sort(), ['api', 'flaky', 'worker']);
    const stop = await tend(c, ['stop', '--all', '--json']);
    assert.equal(stop.code, 0, stop.stderr);
    const stopped = JSON.parse(stop.stdout) as { services: { state: string }[] };
    assert.ok(stopped.services.every((s) => s.state === 'stopped'), stop.stdout);
    await waitFor(() => (survivors(c).every((p) => !p.includes(c.token)) ? true : undefined), { what: 'the services to be gone' });
  } finally {
    await finish(c);
  }
});

test('tend start NAME -f FILE starts the service and what it depends on, from the file', async () => {
  const c = newCase();
  const port = await freePort();
  const file = stackFile(c, port);
  try {
    const result = await tend(c, ['start', 'worker', '-f', file, '--json']);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as { service: { name: string; state: string } };
    assert.equal(report.service.state, 'running');
    const ps = JSON.parse((await tend(c, ['ps', '--json'])).stdout) as { services: { name: string; state: string }[] };
    assert.deepEqual(ps.services.map((s) => `${s.name}:${s.state}`).sort(), ['api:running', 'worker:running']);
    const unknown = await tend(c, ['start', 'nosuch', '-f', file]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /SERVICE_UNKNOWN.*"nosuch".*Known: api, worker, flaky/);
  } finally {
    await finish(c);
  }
});

test('bad config files: exit 2, file:line, the field and the fix; nothing starts', async () => {
  const cases: [string, string, RegExp][] = [
    ['an unknown field', 'services:\n  web:\n    command: node\n    restart_polcy: always\n', /tend\.yaml:4: services\.web\.restart_polcy: .*Fix: /],
    ['a bad restart policy', 'services:\n  web:\n    command: node\n    restart: sometimes\n', /tend\.yaml:4: services\.web\.restart: .*Fix: /],
    ['a command with spaces', 'services:\n  web:\n    command: node server.js\n', /tend\.yaml:3: services\.web\.command: .*whitespace.*Fix: /],
    ['a dependency cycle', 'services:\n  a:\n    command: x\n    depends_on: [b]\n  b:\n    command: y\n    depends_on: [a]\n', /tend\.yaml:\d+: services\.\w\.depends_on(\[\d\])?: .*cycle.*Fix: /],
    ['YAML syntax', 'services:\n  web: {command: node\n', /tend\.yaml:\d+: .*Fix: /],
    ['no services key', 'web:\n  command: node\n', /tend\.yaml:1: web: unknown field.*Known fields here: services/],
  ];
  for (const [what, text, pattern] of cases) {
    const c = newCase();
    writeFileSync(join(c.dir, 'tend.yaml'), text);
    try {
      for (const args of [['up'], ['up', '-d']]) {
        const result = await tend(c, args);
        assert.equal(result.code, 2, `${what} (${args.join(' ')}): ${result.stderr}`);
        assert.match(result.stderr, /^tend: CONFIG_INVALID: /, what);
        assert.match(result.stderr, pattern, what);
      }
      assert.equal(existsSync(join(c.home, 'daemon.sock')), false, `${what}: no daemon was started`);
      assert.deepEqual(survivors(c), [], what);
    } finally {
      await finish(c);
    }
  }
  const c = newCase();
  try {
    const missing = await tend(c, ['up']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no config file/);
    const named = await tend(c, ['up', '-f', join(c.dir, 'nope.yaml')]);
    assert.equal(named.code, 2, named.stderr);
    assert.match(named.stderr, /nope\.yaml/);
  } finally {
    await finish(c);
  }
});
