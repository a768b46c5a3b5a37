// Service definitions on disk and across the socket: a save/load round trip
// keeps every field (an unlimited restart limit included), a damaged file is
// moved aside with a warning while the others load, and checkDefinition
// refuses a bad field by naming it.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isTendError } from '../../src/core/errors.js';
import type { ServiceConfig } from '../../src/service/definition.js';
import { ServiceStore, checkDefinition, definitionToJson, sameDefinition } from '../../src/supervisor/service-store.js';
import { makeStateDir, removeStateDirs } from '../helpers/state.js';

after(() => removeStateDirs());

function definition(name: string, overrides: Partial<ServiceConfig> = {}): ServiceConfig {
  return {
    name,
    command: '/bin/sh',
    args: ['-c', 'exec sleep 1000'],
    cwd: '/tmp',
    env: { PATH: '/usr/bin:/bin', GREETING: 'hello' },
    inheritEnv: false,
    log: '/tmp/some.log',
    restart: 'on-failure',
    restartLimit: { maxRestarts: 4, backoffMs: 100, maxBackoffMs: 2000 },
    ready: { tcp: 8080, timeoutMs: 5000 },
    ports: [8080, 8443],
    dependsOn: ['db'],
    stopSignal: 'SIGINT',
    stopTimeoutMs: 1500,
    strategy: 'pgroup',
    exemptFromLimit: true,
    unresponsive: { cpuWindowMs: 500, probeIntervalMs: 1000, probeFailures: 3, restart: true },
    ...overrides,
  };
}

function newStore(): { store: ServiceStore; dir: string; warnings: string[] } {
  const dir = join(makeStateDir('store'), 'services');
  const warnings: string[] = [];
  return { store: new ServiceStore(dir, (m) => warnings.push(m)), dir, warnings };
}

/** A definition as JSON (what the socket carries), with `changes` applied on top. */
function jsonWith(changes: Record<string, unknown>): Record<string, unknown> {
  return { ...JSON.parse(JSON.stringify(definitionToJson(definition('web')))), ...changes } as Record<string, unknown>;
}

function assertRefused(value: unknown, field: string): void {
  assert.throws(
    () => checkDefinition(value),
    (error: unknown) => {
      assert.ok(isTendError(error, 'SPEC_OPTION_INVALID'), `expected SPEC_OPTION_INVALID, got ${String(error)}`);
      assert.equal(error.details.field, field);
      assert.match(error.message, new RegExp(`\`${field.replace(/[.[\]]/g, '\\$&')}\``));
      return true;
    },
  );
}

describe('ServiceStore', () => {
  test('save then load gives back every field, and whether the service is wanted', () => {
    const { store, warnings } = newStore();
    const web = definition('web');
    const db = definition('db', { restartLimit: undefined, ready: { log: 'listening on (\\d+)', timeoutMs: 100 }, unresponsive: undefined, log: undefined, dependsOn: [] });
    store.save({ definition: web, wanted: true });
    store.save({ definition: db, wanted: false });
    const loaded = store.load().map((s) => ({ definition: s.definition, wanted: s.wanted }));
    assert.deepEqual(loaded, [
      { definition: db, wanted: false },
      { definition: web, wanted: true },
    ]);
    assert.deepEqual(warnings, []);
  });

  test('an unlimited restart limit (Infinity) survives the round trip, stored as null', () => {
    const { store, dir } = newStore();
    const web = definition('web', { restartLimit: { maxRestarts: Number.POSITIVE_INFINITY, backoffMs: 10, maxBackoffMs: 20 } });
    store.save({ definition: web, wanted: true });
    const raw = JSON.parse(readFileSync(join(dir, 'web.json'), 'utf8')) as { definition: { restartLimit: { maxRestarts: unknown } } };
    assert.equal(raw.definition.restartLimit.maxRestarts, null);
    const [loaded] = store.load();
    assert.ok(loaded);
    assert.equal(loaded.definition.restartLimit?.maxRestarts, Number.POSITIVE_INFINITY);
    assert.deepEqual(loaded.definition, web);
    assert.ok(sameDefinition(loaded.definition, web));
  });

  test('saving again replaces the file; remove() deletes it and tolerates a missing one', () => {
    const { store, dir } = newStore();
    store.save({ definition: definition('web'), wanted: true });
    store.save({ definition: definition('web', { args: ['-c', 'exec sleep 5'] }), wanted: false });
    const loaded = store.load();
    assert.equal(loaded.length, 1);
    assert.deepEqual(loaded[0]?.definition.args, ['-c', 'exec sleep 5']);
    assert.equal(loaded[0]?.wanted, false);
    store.remove('web');
    assert.equal(existsSync(join(dir, 'web.json')), false);
    assert.doesNotThrow(() => store.remove('web'));
    assert.deepEqual(store.load(), []);
  });

  test('a damaged file is moved aside with a warning naming it, and the others still load', () => {
    const { store, dir, warnings } = newStore();
    store.save({ definition: definition('good'), wanted: true });
    writeFileSync(join(dir, 'broken.json'), '{"v":1,"wanted":tr');
    // Valid JSON, but a field is wrong: refused field by field, not half-used.
    writeFileSync(join(dir, 'badfield.json'), `${JSON.stringify({ v: 1, wanted: false, definition: jsonWith({ name: 'badfield', restart: 'sometimes' }) })}\n`);
    // A file whose name does not match the service inside.
    writeFileSync(join(dir, 'other.json'), `${JSON.stringify({ v: 1, wanted: false, definition: jsonWith({ name: 'someone-else' }) })}\n`);
    const loaded = store.load();
    assert.deepEqual(
      loaded.map((s) => s.definition.name),
      ['good'],
    );
    const files = readdirSync(dir).sort();
    for (const name of ['broken', 'badfield', 'other']) {
      assert.equal(files.includes(`${name}.json`), false, `${name}.json should have been moved aside: ${files.join(', ')}`);
      assert.ok(
        files.some((f) => f.startsWith(`${name}.json.corrupt-`)),
        `${name}.json.corrupt-* should exist: ${files.join(', ')}`,
      );
    }
    assert.equal(warnings.length, 3, warnings.join('\n'));
    assert.ok(warnings.some((w) => w.includes(join(dir, 'broken.json')) && /damaged/.test(w)));
    assert.ok(warnings.some((w) => w.includes(join(dir, 'badfield.json')) && w.includes('restart')));
    assert.ok(warnings.some((w) => w.includes(join(dir, 'other.json')) && w.includes('someone-else')));
    // Loading again finds only the good one, and warns no more.
    assert.deepEqual(
      store.load().map((s) => s.definition.name),
      ['good'],
    );
    assert.equal(warnings.length, 3);
  });

  test('a file of another schema version is moved aside', () => {
    const { store, dir, warnings } = newStore();
    writeFileSync(join(dir, 'web.json'), `${JSON.stringify({ v: 2, wanted: true, definition: jsonWith({}) })}\n`);
    assert.deepEqual(store.load(), []);
    assert.equal(existsSync(join(dir, 'web.json')), false);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /not a tend service file of this version/);
  });
});

describe('checkDefinition', () => {
  test('accepts a full definition and gives it back equal', () => {
    const web = definition('web');
    assert.deepEqual(checkDefinition(jsonWith({})), web);
  });

  test('accepts optional fields left out or null', () => {
    const checked = checkDefinition(jsonWith({ log: null, restartLimit: null, ready: null, unresponsive: undefined }));
    assert.equal(checked.log, undefined);
    assert.equal(checked.restartLimit, undefined);
    assert.equal(checked.ready, undefined);
    assert.equal(checked.unresponsive, undefined);
  });

  test('refuses what is not an object', () => {
    assertRefused(null, 'service');
    assertRefused([], 'service');
    assertRefused('web', 'service');
  });

  const cases: [string, Record<string, unknown>, string][] = [
    ['a missing name', { name: undefined }, 'service.name'],
    ['a name with a slash', { name: '../web' }, 'service.name'],
    ['a name too long', { name: 'x'.repeat(65) }, 'service.name'],
    ['an empty command', { command: '  ' }, 'service.command'],
    ['a command with a NUL', { command: 'sh\0' }, 'service.command'],
    ['args not strings', { args: ['-c', 3] }, 'service.args'],
    ['a relative cwd', { cwd: 'relative/dir' }, 'service.cwd'],
    ['env with a number', { env: { A: 1 } }, 'service.env'],
    ['inheritEnv a string', { inheritEnv: 'HOME' }, 'service.inheritEnv'],
    ['inheritEnv true: the daemon would hand out its own environment', { inheritEnv: true }, 'service.inheritEnv'],
    ['an arg with a NUL', { args: ['a\0b'] }, 'service.args'],
    ['an env value with a NUL', { env: { A: 'x\0y' } }, 'service.env'],
    ['an http check that is no URL', { ready: { http: 'not a url', timeoutMs: 1 } }, 'service.ready.http'],
    ['maxBackoffMs below backoffMs', { restartLimit: { maxRestarts: 1, backoffMs: 500, maxBackoffMs: 100 } }, 'service.restartLimit.maxBackoffMs'],
    ['depending on itself', { dependsOn: ['web'] }, 'service.dependsOn'],
    ['a relative log', { log: 'web.log' }, 'service.log'],
    ['an unknown restart policy', { restart: 'sometimes' }, 'service.restart'],
    ['a restartLimit not an object', { restartLimit: 5 }, 'service.restartLimit'],
    ['a negative maxRestarts', { restartLimit: { maxRestarts: -1, backoffMs: 1, maxBackoffMs: 1 } }, 'service.restartLimit.maxRestarts'],
    ['a fractional backoff', { restartLimit: { maxRestarts: 1, backoffMs: 1.5, maxBackoffMs: 1 } }, 'service.restartLimit.backoffMs'],
    ['a tcp check on port 0', { ready: { tcp: 0, timeoutMs: 10 } }, 'service.ready.tcp'],
    ['a check without timeout', { ready: { tcp: 80 } }, 'service.ready.timeoutMs'],
    ['a check of no known kind', { ready: { udp: 53, timeoutMs: 10 } }, 'service.ready'],
    ['a log check with a bad regex', { ready: { log: '(', timeoutMs: 10 } }, 'service.ready.log'],
    ['ports not an array', { ports: 80 }, 'service.ports'],
    ['a port out of range', { ports: [80, 70000] }, 'service.ports[1]'],
    ['dependsOn not strings', { dependsOn: [1] }, 'service.dependsOn'],
    ['an unknown stop signal', { stopSignal: 'SIGNOPE' }, 'service.stopSignal'],
    ['a negative stop timeout', { stopTimeoutMs: -5 }, 'service.stopTimeoutMs'],
    ['an unknown strategy', { strategy: 'docker' }, 'service.strategy'],
    ['exemptFromLimit not a boolean', { exemptFromLimit: 'yes' }, 'service.exemptFromLimit'],
    ['unresponsive not an object', { unresponsive: true }, 'service.unresponsive'],
    ['unresponsive without restart', { unresponsive: { probeFailures: 2 } }, 'service.unresponsive.restart'],
    ['zero probe failures', { unresponsive: { probeFailures: 0, restart: false } }, 'service.unresponsive.probeFailures'],
    ['a negative cpu window', { unresponsive: { cpuWindowMs: -1, probeFailures: 1, restart: false } }, 'service.unresponsive.cpuWindowMs'],
  ];
  for (const [title, changes, field] of cases) {
    test(`refuses ${title}, naming ${field}`, () => {
      assertRefused(jsonWith(changes), field);
    });
  }

  test('names the path it was given', () => {
    assert.throws(
      () => checkDefinition(jsonWith({ restart: 'sometimes' }), 'web.json'),
      (error: unknown) => isTendError(error, 'SPEC_OPTION_INVALID') && error.details.field === 'web.json.restart',
    );
  });
});
