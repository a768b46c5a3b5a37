// The dependency graph as pure functions: each case is a small graph written
// out as `name: dependencies`, and the answer expected for it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dependencyClosure, dependsOnOf, describeCycle, findCycle, startOrder, stopWaves, type DependsOn } from '../../src/service/graph.js';

function graph(edges: Record<string, string[]>): DependsOn {
  return dependsOnOf(Object.entries(edges).map(([name, dependsOn]) => ({ name, dependsOn })));
}

describe('findCycle', () => {
  test('none in a diamond (shared dependency is not a cycle)', () => {
    const g = graph({ app: ['api', 'worker'], api: ['db'], worker: ['db'], db: [] });
    assert.equal(findCycle(['app', 'api', 'worker', 'db'], g), undefined);
  });

  test('a cycle is named as a path from its first member back to it', () => {
    const g = graph({ web: ['api'], api: ['cache'], cache: ['api'] });
    const cycle = findCycle(['web'], g);
    assert.deepEqual(cycle, ['api', 'cache', 'api']);
    assert.equal(describeCycle(cycle ?? []), 'api -> cache -> api');
  });

  test('a self-dependency is a cycle of one', () => {
    assert.deepEqual(findCycle(['a'], graph({ a: ['a'] })), ['a', 'a']);
  });

  test('depth-first in the roots\' order: the same graph always names the same cycle', () => {
    const g = graph({ a: ['b'], b: ['a'], c: ['d'], d: ['c'] });
    assert.deepEqual(findCycle(['c', 'a'], g), ['c', 'd', 'c']);
    assert.deepEqual(findCycle(['a', 'c'], g), ['a', 'b', 'a']);
  });

  test('a dependency that is not defined ends the path, it is not a cycle', () => {
    assert.equal(findCycle(['a'], graph({ a: ['missing'] })), undefined);
  });
});

describe('dependencyClosure', () => {
  test('the service first, then everything it needs, each once', () => {
    const g = graph({ app: ['api', 'worker'], api: ['db'], worker: ['db'], db: [], other: [] });
    assert.deepEqual(dependencyClosure('app', g), ['app', 'api', 'db', 'worker']);
  });

  test('undefined dependencies are left out; an unknown name has no closure', () => {
    const g = graph({ app: ['ghost', 'db'], db: [] });
    assert.deepEqual(dependencyClosure('app', g), ['app', 'db']);
    assert.deepEqual(dependencyClosure('ghost', g), []);
  });

  test('a cycle does not loop', () => {
    assert.deepEqual(dependencyClosure('a', graph({ a: ['b'], b: ['a'] })), ['a', 'b']);
  });
});

describe('startOrder', () => {
  test('dependencies before dependents, otherwise the given order', () => {
    const g = graph({ web: ['api'], api: ['db'], db: [], docs: [] });
    assert.deepEqual(startOrder(['web', 'docs', 'api', 'db'], g), ['db', 'api', 'web', 'docs']);
  });

  test('only the given names, ordered through dependencies outside them', () => {
    const g = graph({ web: ['api'], api: ['db'], db: [] });
    assert.deepEqual(startOrder(['web', 'db'], g), ['db', 'web']);
  });

  test('a cycle does not loop: its members come in the order met', () => {
    assert.deepEqual(startOrder(['a', 'b'], graph({ a: ['b'], b: ['a'] })), ['b', 'a']);
  });
});

describe('stopWaves', () => {
  test('dependents first: app, then cache, then db', () => {
    const g = graph({ app: ['cache'], cache: ['db'], db: [] });
    assert.deepEqual(stopWaves(['db', 'cache', 'app'], g), [['app'], ['cache'], ['db']]);
  });

  test('independent services stop together', () => {
    const g = graph({ a: [], b: [], c: ['a'] });
    assert.deepEqual(stopWaves(['a', 'b', 'c'], g), [['b', 'c'], ['a']]);
  });

  test('only dependents among the names hold a service back', () => {
    const g = graph({ app: ['db'], db: [] });
    assert.deepEqual(stopWaves(['db'], g), [['db']]);
  });

  test('a cycle does not loop: its members stop together', () => {
    assert.deepEqual(stopWaves(['a', 'b'], graph({ a: ['b'], b: ['a'] })), [['a', 'b']]);
  });
});
