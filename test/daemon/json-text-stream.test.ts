// JsonTextStream writes exactly what JSON.stringify writes, slice by slice,
// whatever the slice size, never splitting a surrogate pair; and it throws
// where JSON.stringify throws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonTextStream } from '../../src/daemon/json-text-stream.js';

function readAll(value: unknown, sliceChars: number): string[] {
  const stream = new JsonTextStream(value);
  const slices: string[] = [];
  for (let slice = stream.read(sliceChars); slice !== undefined; slice = stream.read(sliceChars)) slices.push(slice);
  assert.equal(stream.done, true);
  return slices;
}

const samples: unknown[] = [
  null,
  undefined,
  0,
  -1.5e300,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  true,
  '',
  'plain',
  'a "quote", a \\ backslash, a \n newline, \u0001, naïve, 日本, 🚀🚀, and a lone \ud800 surrogate',
  [],
  {},
  [1, [2, [3, []]], {}, undefined, () => 1, Symbol('s'), null],
  { a: 1, skipped: undefined, fn: () => 1, nested: { b: [{ c: 'd' }], empty: {} }, 'key "with" quotes': '🚀' },
  { at: new Date(86_400_000), custom: { toJSON: (key: string) => `custom at ${key}` }, list: [{ toJSON: () => undefined }] },
  Object.assign(Object.create({ inherited: 1 }) as object, { own: 2 }),
  [new Number(3), new String('boxed'), new Boolean(false)],
  { services: Array.from({ length: 200 }, (_, n) => ({ name: `s${n}`, pids: [n, n + 1], cpu_percent: n / 7, last_exit: null })) },
];

test('the slices join into exactly what JSON.stringify writes, for every slice size', () => {
  for (const value of samples) {
    const expected = JSON.stringify(value) ?? 'null';
    for (const size of [2, 3, 5, 64, 1_000_000]) {
      const slices = readAll(value, size);
      assert.equal(slices.join(''), expected, `${expected.slice(0, 60)} in slices of ${size}`);
      for (const slice of slices) assert.ok(slice.length <= size && slice.length > 0, `slice of ${slice.length} chars within ${size}`);
    }
  }
});

test('a slice never ends between the halves of a surrogate pair', () => {
  const value = '🚀'.repeat(50);
  for (const size of [2, 3, 4, 7]) {
    for (const slice of readAll(value, size)) {
      const last = slice.charCodeAt(slice.length - 1);
      assert.ok(last < 0xd800 || last > 0xdbff, `a slice of ${size} ends in a high surrogate`);
    }
  }
});

test('a cycle and a BigInt throw, as in JSON.stringify', () => {
  const cyclic: Record<string, unknown> = { a: [1] };
  cyclic.self = { back: cyclic };
  assert.throws(() => readAll(cyclic, 16), /circular/);
  assert.throws(() => readAll({ n: [1, 2n] }, 16), TypeError);
  // The same object twice, side by side, is no cycle.
  const shared = { x: 1 };
  assert.equal(readAll([shared, shared], 4).join(''), '[{"x":1},{"x":1}]');
});
