// The stack file: a complete example parses to the exact expected services,
// and every kind of mistake is reported as CONFIG_INVALID at the right line,
// with the field path and a fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isTendError } from '../../src/core/errors.js';
import { loadConfig, parseConfig, type StackConfig } from '../../src/stack/config.js';

const fixtures = fileURLToPath(new URL('../../../test/fixtures/config/', import.meta.url));
const dir = fixtures.replace(/\/$/, '');

test('a stack file using every field parses to the exact services', async () => {
  const file = join(fixtures, 'tend.yaml');
  const expected: StackConfig = {
    file,
    dir,
    services: [
      {
        name: 'db',
        command: 'postgres',
        args: ['-D', './data'],
        cwd: join(dir, 'db'),
        env: {
          DATABASE_URL: 'postgres://localhost/app',
          LOG_LEVEL: 'debug',
          QUOTED: 'single quoted',
          EMPTY: '',
          PLAIN: 'spaced value',
          PGPORT: '5432',
        },
        inheritEnv: ['PATH', 'HOME'],
        log: join(dir, 'logs/db.log'),
        restart: 'always',
        restartLimit: { maxRestarts: 5, backoffMs: 500, maxBackoffMs: 60_000 },
        ready: { tcp: 5432, timeoutMs: 20_000 },
        ports: [5432],
        dependsOn: [],
        stopSignal: 'SIGINT',
        stopTimeoutMs: 10_000,
        strategy: 'pgroup',
        exemptFromLimit: true,
      unresponsive: undefined,
      },
      {
        name: 'web',
        command: 'node',
        args: ['server.js', '--port', '3000'],
        cwd: dir,
        env: {},
        inheritEnv: true,
        log: undefined,
        restart: 'on-failure',
        restartLimit: undefined,
        ready: { http: 'http://127.0.0.1:3000/health', timeoutMs: 30_000 },
        ports: [3000, 3001],
        dependsOn: ['db'],
        stopSignal: 'SIGTERM',
        stopTimeoutMs: 2500,
        strategy: 'auto',
        exemptFromLimit: false,
      unresponsive: undefined,
      },
      {
        name: 'worker',
        command: './worker',
        args: [],
        cwd: dir,
        env: {},
        inheritEnv: false,
        log: undefined,
        restart: 'never',
        restartLimit: undefined,
        ready: { log: 'ready in \\d+ms', timeoutMs: 30_000 },
        ports: [],
        dependsOn: ['db', 'web'],
        stopSignal: 'SIGHUP',
        stopTimeoutMs: 5000,
        strategy: 'auto',
        exemptFromLimit: false,
      unresponsive: undefined,
      },
    ],
  };
  assert.deepEqual(await loadConfig(file), expected);
});

test('a JSON stack file (tab-indented) parses with the same rules', async () => {
  const config = await loadConfig(join(fixtures, 'good.json'));
  assert.equal(config.services.length, 1);
  const api = config.services[0];
  assert.equal(api?.command, 'node');
  assert.deepEqual(api?.args, ['api.js']);
  assert.deepEqual(api?.env, { PORT: '8080' });
  assert.deepEqual(api?.ports, [8080]);
});

interface BadCase {
  readonly name: string;
  readonly yaml: string;
  readonly line: number;
  /** undefined for a syntax error, which has no field. */
  readonly field: string | undefined;
  /** Matched against the problem part of the message. */
  readonly problem: RegExp;
  /** Matched against the fix part of the message. */
  readonly fix: RegExp;
  /** Where the error points when it is not the config file itself (an env file). */
  readonly file?: string;
}

const badCases: readonly BadCase[] = [
  {
    name: 'YAML syntax error',
    yaml: 'services:\n  web:\n    command: node\n    args: [server.js\n    restart: always\n',
    line: 5,
    field: undefined,
    problem: /Flow sequence|\]/,
    fix: /YAML syntax/,
  },
  {
    name: 'duplicate key',
    yaml: 'services:\n  web:\n    command: node\n    command: deno\n',
    line: 4,
    field: undefined,
    problem: /unique/,
    fix: /duplicate/,
  },
  {
    name: 'unknown top-level key',
    yaml: 'services:\n  web:\n    command: node\nservise: {}\n',
    line: 4,
    field: 'servise',
    problem: /unknown field "servise"/,
    fix: /Did you mean `services`\?/,
  },
  {
    name: 'unknown service field with a suggestion',
    yaml: 'services:\n  web:\n    command: node\n    restrat: always\n',
    line: 4,
    field: 'services.web.restrat',
    problem: /unknown field "restrat"/,
    fix: /Did you mean `restart`\?.*Known fields here: command, args/,
  },
  {
    name: 'missing command (reported at the service key)',
    yaml: 'services:\n  web:\n    command: node\n  db:\n    args: [-D, data]\n    restart: always\n',
    line: 4,
    field: 'services.db.command',
    problem: /service "db" has no `command`/,
    fix: /Add `command:`/,
  },
  {
    name: 'command string with spaces (no shell, no splitting)',
    yaml: 'services:\n  web:\n    command: node server.js\n',
    line: 3,
    field: 'services.web.command',
    problem: /contains whitespace/,
    fix: /command: \["node","server\.js"\]/,
  },
  {
    name: 'bad restart policy',
    yaml: 'services:\n  web:\n    command: node\n    restart: sometimes\n',
    line: 4,
    field: 'services.web.restart',
    problem: /^expected one of never, on-failure, always, got "sometimes"$/,
    fix: /^Use on-failure \(the default\), never or always\.$/,
  },
  {
    name: 'empty restart value (reported at its key)',
    yaml: 'services:\n  web:\n    command: node\n    restart:\n    ports: [3000]\n',
    line: 4,
    field: 'services.web.restart',
    problem: /got nothing/,
    fix: /on-failure \(the default\)/,
  },
  {
    name: 'port out of range',
    yaml: 'services:\n  web:\n    command: node\n    ports:\n      - 3000\n      - 70000\n',
    line: 6,
    field: 'services.web.ports[1]',
    problem: /expected a port number from 1 to 65535, got 70000 \(number\)/,
    fix: /whole number/,
  },
  {
    name: 'port declared by two services',
    yaml: 'services:\n  a:\n    command: node\n    ports: [3000]\n  b:\n    command: node\n    ports:\n      - 3000\n',
    line: 8,
    field: 'services.b.ports[0]',
    problem: /port 3000 is already declared by service "a"/,
    fix: /its own ports/,
  },
  {
    name: 'duration without a unit',
    yaml: 'services:\n  web:\n    command: node\n    stop_timeout: 5 seconds\n',
    line: 4,
    field: 'services.web.stop_timeout',
    problem: /expected a duration such as 500ms, 10s or 2m: "5 seconds" is not a duration/,
    fix: /with a unit: 500ms, 10s/,
  },
  {
    name: 'a bare number of seconds, which is not taken for milliseconds',
    yaml: 'services:\n  web:\n    command: node\n    stop_timeout: 10\n',
    line: 4,
    field: 'services.web.stop_timeout',
    problem: /10 has no unit/,
    fix: /10s for seconds, 10ms for milliseconds/,
  },
  {
    name: 'a bare ready timeout',
    yaml: 'services:\n  web:\n    command: node\n    ready: { tcp: 3000, timeout: 30 }\n',
    line: 4,
    field: 'services.web.ready.timeout',
    problem: /30 has no unit/,
    fix: /30s for seconds/,
  },
  {
    name: 'restart_limit backoff that is not a duration',
    yaml: 'services:\n  web:\n    command: node\n    restart_limit:\n      max: 3\n      backoff: soon\n',
    line: 6,
    field: 'services.web.restart_limit.backoff',
    problem: /"soon" is not a duration/,
    fix: /unit/,
  },
  {
    name: 'ready.log that is not a regular expression',
    yaml: 'services:\n  web:\n    command: node\n    ready:\n      log: "listening (on"\n',
    line: 5,
    field: 'services.web.ready.log',
    problem: /"listening \(on" is not a valid regular expression/,
    fix: /escape/,
  },
  {
    name: 'ready with two checks',
    yaml: 'services:\n  web:\n    command: node\n    ready:\n      tcp: 3000\n      log: listening\n',
    line: 6,
    field: 'services.web.ready',
    problem: /give one readiness check, got tcp and log/,
    fix: /ready: \{ tcp: 3000 \}/,
  },
  {
    name: 'depends_on an unknown service',
    yaml: 'services:\n  db:\n    command: postgres\n  web:\n    command: node\n    depends_on:\n      - dbb\n',
    line: 7,
    field: 'services.web.depends_on[0]',
    problem: /unknown service "dbb"/,
    fix: /Did you mean "db"\?.*\(db, web\)/,
  },
  {
    name: 'a dependency cycle, named in full',
    yaml: 'services:\n  a:\n    command: x\n    depends_on: [b]\n  b:\n    command: x\n    depends_on: [c]\n  c:\n    command: x\n    depends_on: [a]\n',
    line: 10,
    field: 'services.c.depends_on[0]',
    problem: /dependency cycle: a -> b -> c -> a/,
    fix: /Remove one of these dependencies/,
  },
  {
    name: 'a service that depends on itself',
    yaml: 'services:\n  a:\n    command: x\n    depends_on: [a]\n',
    line: 4,
    field: 'services.a.depends_on[0]',
    problem: /dependency cycle: a -> a/,
    fix: /Remove/,
  },
  {
    name: 'env value that is a number',
    yaml: 'services:\n  web:\n    command: node\n    env:\n      NODE_ENV: production\n      PORT: 3000\n',
    line: 6,
    field: 'services.web.env.PORT',
    problem: /expected a string, got 3000 \(number\)/,
    fix: /Quote it: `PORT: "3000"` \(numbers and booleans must be quoted/,
  },
  {
    name: 'env setting the reserved marker variable',
    yaml: 'services:\n  web:\n    command: node\n    env: { TEND_ID: x }\n',
    line: 4,
    field: 'services.web.env.TEND_ID',
    problem: /reserved/,
    fix: /Remove TEND_ID/,
  },
  {
    name: 'missing env_file',
    yaml: 'services:\n  web:\n    command: node\n    env_file: missing.env\n',
    line: 4,
    field: 'services.web.env_file',
    problem: /env file "missing\.env" does not exist/,
    fix: /Create the file or correct the path/,
  },
  {
    name: 'malformed line in an env_file (reported in that file)',
    yaml: 'services:\n  web:\n    command: node\n    env_file: [app.env, broken.env]\n',
    line: 2,
    field: 'services.web.env_file[1]',
    problem: /expected KEY=VALUE, got "this line has no equals sign"/,
    fix: /one KEY=VALUE per line/,
    file: 'broken.env',
  },
  {
    name: 'invalid service name',
    yaml: 'services:\n  web:\n    command: node\n  "my web":\n    command: node\n',
    line: 4,
    field: 'services.my web',
    problem: /expected a service name \(1-64 letters, digits, "\.", "_", "-" or "@"\), got "my web"/,
    fix: /Rename it/,
  },
  {
    name: 'no services key',
    yaml: '# nothing here\nversion: 1\n',
    line: 2,
    field: 'version',
    problem: /unknown field "version"/,
    fix: /Known fields here: services/,
  },
];

for (const bad of badCases) {
  test(`bad config: ${bad.name} → line ${bad.line}, ${bad.field ?? 'no field'}`, () => {
    const file = join(fixtures, 'case.yaml');
    assert.throws(
      () => parseConfig(bad.yaml, file),
      (error: unknown) => {
        assert.ok(isTendError(error, 'CONFIG_INVALID'), String(error));
        const shown = bad.file === undefined ? file : join(fixtures, bad.file);
        assert.equal(error.details.file, shown, error.message);
        assert.equal(error.details.line, bad.line, error.message);
        assert.equal(error.details.field, bad.field, error.message);
        assert.match(String(error.details.message), bad.problem, error.message);
        assert.match(String(error.details.fix), bad.fix, error.message);
        const prefix = `${shown}:${bad.line}: ${bad.field === undefined ? '' : `${bad.field}: `}`;
        assert.ok(error.message.startsWith(prefix), `${error.message} should start with ${prefix}`);
        assert.match(error.message, /\. Fix: \S/);
        assert.equal(error.isUsageError, true);
        return true;
      },
    );
  });
}

test('the message reads file:line: field: problem. Fix: ...', () => {
  assert.throws(() => parseConfig('services:\n  web:\n    command: node\n    restart: sometimes\n', 'tend.yaml'), {
    message: 'tend.yaml:4: services.web.restart: expected one of never, on-failure, always, got "sometimes". Fix: Use on-failure (the default), never or always.',
  });
});

test('a JSON stack file with a bad field reports its line', async () => {
  const file = join(fixtures, 'bad-restart.json');
  await assert.rejects(loadConfig(file), (error: unknown) => {
    assert.ok(isTendError(error, 'CONFIG_INVALID'));
    assert.equal(error.details.line, 6);
    assert.equal(error.details.field, 'services.web.restart');
    assert.ok(error.message.startsWith(`${file}:6: services.web.restart: expected one of never, on-failure, always, got "sometimes"`), error.message);
    return true;
  });
});

test('a JSON syntax error reports the parser line and says JSON', () => {
  assert.throws(() => parseConfig('{\n  "services": {\n    "web": { "command": "node" \n  }\n', 'tend.json'), (error: unknown) => {
    assert.ok(isTendError(error, 'CONFIG_INVALID'));
    assert.equal(error.details.field, undefined);
    assert.equal(typeof error.details.line, 'number');
    assert.match(error.message, /^tend\.json:\d+: .*Fix: Correct the JSON syntax/);
    return true;
  });
});

test('a config file that cannot be read is CONFIG_INVALID naming the path', async () => {
  const file = join(fixtures, 'no-such-file.yaml');
  await assert.rejects(loadConfig(file), (error: unknown) => {
    assert.ok(isTendError(error, 'CONFIG_INVALID'));
    assert.match(error.message, /no-such-file\.yaml:1: cannot read the config file \(ENOENT\)/);
    return true;
  });
});

test('env wins over env_file, and a command list cannot be combined with args', () => {
  const config = parseConfig('services:\n  web:\n    command: node\n    env_file: app.env\n    env: { LOG_LEVEL: warn }\n', join(fixtures, 'x.yaml'));
  assert.equal(config.services[0]?.env.LOG_LEVEL, 'warn');
  assert.throws(() => parseConfig('services:\n  web:\n    command: [node, a.js]\n    args: [b.js]\n', 'tend.yaml'), {
    message: /^tend\.yaml:4: services\.web\.args: arguments are given both/,
  });
});

test('an empty file and an empty services mapping are refused with a fix', () => {
  assert.throws(() => parseConfig('', 'tend.yaml'), /tend\.yaml:1: expected a mapping with a `services:` key, got nothing\. Fix: /);
  assert.throws(() => parseConfig('services: {}\n', 'tend.yaml'), /tend\.yaml:1: services: no services are declared\. Fix: Add at least one service/);
});

test('aliases stand for their anchors', () => {
  const config = parseConfig('services:\n  db:\n    command: postgres\n    env: &common { LOG_LEVEL: info }\n  web:\n    command: node\n    env: *common\n', 'tend.yaml');
  assert.deepEqual(config.services[1]?.env, { LOG_LEVEL: 'info' });
});
