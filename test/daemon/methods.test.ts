// The daemon's method table: params are checked before a handler runs, and
// every method is described (summary, kind, params schema, error codes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorCodes, isTendError } from '../../src/core/errors.js';
import { protocolHandlersOf, type MethodHandlers } from '../../src/daemon/dispatch.js';
import { methodNames, methods } from '../../src/daemon/methods.js';

const signal = new AbortController().signal;
const context = { signal, progress: (): void => undefined };

/** Handlers that record what reached them; every method answers null. */
function recordingHandlers(seen: unknown[]): MethodHandlers {
  return Object.fromEntries(methodNames.map((name) => [name, (params: unknown) => (seen.push({ name, params }), Promise.resolve(null))])) as unknown as MethodHandlers;
}

test('every method has a summary, a kind, an object params schema and known error codes', () => {
  assert.ok(methodNames.length >= 12);
  for (const name of methodNames) {
    const spec = methods[name];
    assert.ok(spec.summary.length > 10, name);
    assert.ok(spec.kind === 'query' || spec.kind === 'command', name);
    assert.equal(spec.params.json.type, 'object', name);
    for (const code of spec.errors) assert.ok(errorCodes.includes(code), `${name}: ${code}`);
  }
});

test('params that do not fit the table never reach the handler', async () => {
  const seen: unknown[] = [];
  const handlers = protocolHandlersOf(recordingHandlers(seen));
  const cases: [string, unknown, string][] = [
    ['info', {}, 'params.name'],
    ['info', { name: 'has space' }, 'params.name'],
    ['stop', { names: 'web' }, 'params.names'],
    ['stop', { names: ['web'], timeoutMs: -1 }, 'params.timeoutMs'],
    ['limit', { max: 0 }, 'params.max'],
    ['start', { name: 'web', queue: 'no' }, 'params.queue'],
    ['ps', { verbose: true }, 'params.verbose'],
    ['define', { definition: { name: 'web' } }, 'params.definition.cwd'],
  ];
  for (const [method, params, field] of cases) {
    const handler = handlers[method];
    assert.ok(handler, method);
    await assert.rejects(handler(params, context), (error: unknown) => isTendError(error, 'SPEC_OPTION_INVALID') && error.details.field === field, `${method} ${JSON.stringify(params)}`);
  }
  assert.deepEqual(seen, []);
});

test('params that fit reach the handler checked, optional ones left out when absent', async () => {
  const seen: unknown[] = [];
  const handlers = protocolHandlersOf(recordingHandlers(seen));
  await handlers.stop?.({ names: ['web', 'db'], timeoutMs: 500 }, context);
  await handlers.limit?.({}, context);
  assert.deepEqual(seen, [
    { name: 'stop', params: { names: ['web', 'db'], timeoutMs: 500 } },
    { name: 'limit', params: {} },
  ]);
});
