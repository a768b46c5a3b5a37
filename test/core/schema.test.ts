// The runtime schemas that check what crosses the socket and the HTTP API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isTendError } from '../../src/core/errors.js';
import { array, boolean, integer, literal, object, optional, record, string } from '../../src/core/schema.js';

function refusal(run: () => unknown): { field: string; expected: string } {
  try {
    run();
  } catch (error) {
    assert.ok(isTendError(error, 'SPEC_OPTION_INVALID'), String(error));
    return { field: error.details.field, expected: error.details.expected };
  }
  assert.fail('expected a refusal');
}

const shape = object({
  name: string({ pattern: /^[a-z]+$/, expected: 'a lower-case name' }),
  count: optional(integer({ min: 1, max: 10 })),
  tags: optional(array(string())),
  env: optional(record(string())),
  mode: optional(literal('fast', 'slow')),
  on: optional(boolean()),
});

test('a value that fits comes back with only the known keys, missing and null optionals left out', () => {
  assert.deepEqual(shape.parse({ name: 'web', count: 3, tags: ['a'], env: { A: '1' }, mode: 'fast', on: false }, 'p'), {
    name: 'web',
    count: 3,
    tags: ['a'],
    env: { A: '1' },
    mode: 'fast',
    on: false,
  });
  assert.deepEqual(shape.parse({ name: 'web', count: null }, 'p'), { name: 'web' });
});

test('each misfit is refused naming its path and what was expected', () => {
  assert.deepEqual(refusal(() => shape.parse({ name: 'Web' }, 'params')), { field: 'params.name', expected: 'a lower-case name' });
  assert.deepEqual(refusal(() => shape.parse({ name: 'web', count: 11 }, 'params')), { field: 'params.count', expected: 'an integer from 1 to 10' });
  assert.deepEqual(refusal(() => shape.parse({ name: 'web', count: 1.5 }, 'params')), { field: 'params.count', expected: 'an integer from 1 to 10' });
  assert.equal(refusal(() => shape.parse({ name: 'web', tags: ['a', 2] }, 'params')).field, 'params.tags[1]');
  assert.equal(refusal(() => shape.parse({ name: 'web', env: { A: 1 } }, 'params')).field, 'params.env.A');
  assert.match(refusal(() => shape.parse({ name: 'web', mode: 'medium' }, 'params')).expected, /one of "fast", "slow"/);
  assert.equal(refusal(() => shape.parse({ name: 'web', on: 'yes' }, 'params')).expected, 'true or false');
  assert.equal(refusal(() => shape.parse([], 'params')).field, 'params');
  assert.equal(refusal(() => shape.parse({ name: 'a\0b' }, 'params')).field, 'params.name');
});

test('an unknown key is refused, not ignored: a typo or a newer client must not pass silently', () => {
  const refused = refusal(() => shape.parse({ name: 'web', cuont: 3 }, 'params'));
  assert.equal(refused.field, 'params.cuont');
  assert.match(refused.expected, /no such key \(known: name, count, tags, env, mode, on\)/);
});

test('schemas describe themselves as JSON Schema', () => {
  assert.deepEqual(shape.json.required, ['name']);
  assert.equal(shape.json.additionalProperties, false);
  const properties = shape.json.properties as Record<string, Record<string, unknown>>;
  assert.deepEqual(properties.count, { type: 'integer', minimum: 1, maximum: 10 });
  assert.deepEqual(properties.mode, { enum: ['fast', 'slow'] });
  assert.deepEqual(properties.tags, { type: 'array', items: { type: 'string' } });
  assert.equal(properties.name?.pattern, '^[a-z]+$');
});
