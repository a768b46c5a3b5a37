// One rule per field, one wording: tend.yaml and the wire refuse the same
// value with the same words (each frames them its own way).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isTendError } from '../../src/core/errors.js';
import { readDuration } from '../../src/service/duration.js';
import * as rules from '../../src/service/rules.js';
import { parseConfig } from '../../src/stack/config.js';
import { checkDefinition } from '../../src/supervisor/service-store.js';

test('each rule accepts what it should and refuses the rest', () => {
  assert.equal(rules.port.read(3000), 3000);
  for (const bad of [0, 65536, 1.5, '3000', null]) assert.equal(rules.port.read(bad), undefined, String(bad));
  assert.equal(rules.strategy.read('pgroup'), 'pgroup');
  assert.equal(rules.strategy.read('docker'), undefined);
  assert.equal(rules.strategy.fix('pgrop'), 'Did you mean pgroup?');
  assert.equal(rules.restartPolicy.read('always'), 'always');
  assert.equal(rules.restartPolicy.fix('alwys'), 'Did you mean always?');
  assert.equal(rules.serviceName.read('web@2'), 'web@2');
  for (const bad of ['my web', '', 'x'.repeat(65), 5]) assert.equal(rules.serviceName.read(bad), undefined, String(bad));
  assert.equal(rules.stopSignal.read('term'), 'SIGTERM');
  assert.equal(rules.stopSignal.read(9), 'SIGKILL');
  assert.equal(rules.stopSignal.read('SIGNOPE'), undefined);
  assert.deepEqual(readDuration('1.5m'), { ok: true, ms: 90_000 });
  assert.equal(readDuration('10').ok, false);
  assert.equal(readDuration(10).ok, false);
  assert.equal(readDuration('9999h').ok, false);
});

const wire = {
  name: 'web',
  command: 'node',
  args: [],
  cwd: '/',
  env: {},
  inheritEnv: false,
  restart: 'on-failure',
  ports: [],
  dependsOn: [],
  stopSignal: 'SIGTERM',
  stopTimeoutMs: 5000,
  strategy: 'auto',
  exemptFromLimit: false,
};

function yamlProblem(field: string, value: string): string {
  try {
    parseConfig(`services:\n  web:\n    command: node\n    ${field}: ${value}\n`, 'tend.yaml');
  } catch (error) {
    assert.ok(isTendError(error, 'CONFIG_INVALID'));
    return error.details.message;
  }
  assert.fail(`${field}: ${value} was accepted`);
}

function wireExpected(key: string, value: unknown): string {
  try {
    checkDefinition({ ...wire, [key]: value }, 'service');
  } catch (error) {
    assert.ok(isTendError(error, 'SPEC_OPTION_INVALID'));
    return error.details.expected;
  }
  assert.fail(`${key}: ${JSON.stringify(value)} was accepted`);
}

test('tend.yaml and the wire refuse a value in the same words', () => {
  const cases: [rules.Rule<unknown>, string, string, string, unknown][] = [
    [rules.strategy, 'strategy', 'docker', 'strategy', 'docker'],
    [rules.restartPolicy, 'restart', 'sometimes', 'restart', 'sometimes'],
    [rules.stopSignal, 'stop_signal', 'SIGNOPE', 'stopSignal', 'SIGNOPE'],
    [rules.port, 'ports', '[70000]', 'ports', [70000]],
  ];
  for (const [rule, yamlKey, yamlValue, wireKey, wireValue] of cases) {
    assert.ok(yamlProblem(yamlKey, yamlValue).startsWith(`expected ${rule.expected}, got`), yamlKey);
    assert.equal(wireExpected(wireKey, wireValue), rule.expected, wireKey);
  }
});
