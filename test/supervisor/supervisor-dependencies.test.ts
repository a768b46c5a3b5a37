// The supervisor in-process, against real process trees. Dependencies: start
// order, failures that propagate, and stop order. Every wait is for an event or
// a condition with a deadline; after each test nothing the services started may
// be alive.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { NODE } from '../helpers/fixtures.js';
import { withDeadline } from '../helpers/wait.js';
import { checkNothingSurvives, DEADLINE_MS, svc, byTag, withSupervisor, pending, waitForSpawn, rejectsWith, freePort, serverCode, statesOf, indexOf, triggerPath } from './harness.js';

checkNothingSurvives();

describe('Supervisor', () => {
  describe('dependencies', () => {
    test('a dependent is spawned only once its dependency runs and is ready', async () => {
      await withSupervisor('deps', {}, async (ctx) => {
        const port = await freePort();
        const trigger = triggerPath(ctx, 'db');
        const code = `const fs = require('fs'); const t = setInterval(() => { if (fs.existsSync(${JSON.stringify(trigger)})) { clearInterval(t); ${serverCode(port)} } }, 20);`;
        ctx.supervisor.define(svc('db', { command: NODE, args: ['-e', code], ready: { tcp: port, timeoutMs: DEADLINE_MS } }));
        const app = svc('app', { dependsOn: ['db'] });
        ctx.supervisor.define(app);
        const starting = pending(ctx.supervisor.start('app'));
        const db = await waitForSpawn(ctx.supervisor, 'db');
        assert.equal(db.state, 'starting');
        assert.equal(ctx.supervisor.info('app').state, 'queued');
        assert.equal(ctx.supervisor.info('app').pid, null);
        assert.deepEqual(byTag(app), []);
        writeFileSync(trigger, '');
        const report = await withDeadline(starting, { what: 'start app', timeoutMs: DEADLINE_MS });
        assert.equal(report.service.state, 'running');
        const dbRunning = indexOf(ctx.events, 'db', 'running');
        const appStarting = indexOf(ctx.events, 'app', 'starting');
        assert.ok(dbRunning >= 0 && appStarting > dbRunning, `db running (#${dbRunning}) before app starting (#${appStarting})`);
        assert.equal(ctx.supervisor.info('db').state, 'running');
      });
    });

    test('DEPENDENCY_FAILED when the dependency fails; the dependent is never spawned', async () => {
      await withSupervisor('deps-fail', {}, async (ctx) => {
        const port = await freePort();
        ctx.supervisor.define(svc('db', { ready: { tcp: port, timeoutMs: 500 } }));
        const app = svc('app', { dependsOn: ['db'] });
        ctx.supervisor.define(app);
        const error = await rejectsWith(ctx.supervisor.start('app'), 'DEPENDENCY_FAILED', 'start app');
        assert.equal(error.details.dependency, 'db');
        assert.equal(error.details.state, 'failed');
        const info = ctx.supervisor.info('app');
        assert.equal(info.state, 'failed');
        assert.equal(ctx.supervisor.info('db').state, 'failed');
        assert.ok(!statesOf(ctx.events, 'app').includes('starting'), `app states: ${statesOf(ctx.events, 'app').join(', ')}`);
        assert.deepEqual(byTag(app), []);
      });
    });

    test('DEPENDENCY_FAILED when a dependency is not defined', async () => {
      await withSupervisor('deps-missing', {}, async ({ supervisor }) => {
        supervisor.define(svc('app', { dependsOn: ['nothere'] }));
        const error = await rejectsWith(supervisor.start('app'), 'DEPENDENCY_FAILED', 'start app');
        assert.match(error.message, /not defined/);
        assert.equal(supervisor.info('app').state, 'failed');
      });
    });

    test('stop order: a dependency is stopped after its dependents', async () => {
      await withSupervisor('stop-order', {}, async (ctx) => {
        ctx.supervisor.define(svc('db'));
        ctx.supervisor.define(svc('cache', { dependsOn: ['db'] }));
        ctx.supervisor.define(svc('app', { dependsOn: ['cache', 'db'] }));
        await ctx.supervisor.start('app');
        for (const name of ['db', 'cache', 'app']) assert.equal(ctx.supervisor.info(name).state, 'running', name);
        const from = ctx.events.length;
        // Listed dependency-first: the order must come from the dependencies, not the list.
        await withDeadline(ctx.supervisor.stop(['db', 'cache', 'app']), { what: 'stop all three', timeoutMs: DEADLINE_MS });
        const appStopped = indexOf(ctx.events, 'app', 'stopped', from);
        const cacheStopping = indexOf(ctx.events, 'cache', 'stopping', from);
        const cacheStopped = indexOf(ctx.events, 'cache', 'stopped', from);
        const dbStopping = indexOf(ctx.events, 'db', 'stopping', from);
        assert.ok(appStopped >= 0 && cacheStopping > appStopped, `app stopped (#${appStopped}) before cache stopping (#${cacheStopping})`);
        assert.ok(cacheStopped >= 0 && dbStopping > cacheStopped, `cache stopped (#${cacheStopped}) before db stopping (#${dbStopping})`);
        for (const name of ['db', 'cache', 'app']) assert.equal(ctx.supervisor.info(name).state, 'stopped', name);
      });
    });
  });
});
