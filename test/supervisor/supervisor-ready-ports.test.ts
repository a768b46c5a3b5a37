// The supervisor in-process, against real processes and sockets: a readiness
// check proves that the service answered. The port a tcp or local http check
// connects to is checked free before start like a declared port, and a
// listener outside the service's tree never makes it ready. Every wait is for
// an event or a condition with a deadline; after each test nothing the
// services started (or the test's own listeners) may be alive.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { NODE } from '../helpers/fixtures.js';
import { isPortFree } from '../helpers/ports.js';
import { waitForExit } from '../helpers/wait.js';
import { byTag, checkNothingSurvives, freePort, pending, rejectsWith, serverCode, startForeignListener, statesOf, svc, waitForSpawn, withSupervisor } from './harness.js';

checkNothingSurvives();

async function stopForeign(foreign: ChildProcess): Promise<void> {
  foreign.kill('SIGKILL');
  await waitForExit(foreign, { what: 'the foreign listener' });
}

describe('Supervisor', () => {
  describe('readiness ports', () => {
    for (const [label, ready] of [
      ['tcp', (port: number) => ({ tcp: port, timeoutMs: 5000 })],
      ['http on 127.0.0.1', (port: number) => ({ http: `http://127.0.0.1:${port}/`, timeoutMs: 5000 })],
      ['http on localhost', (port: number) => ({ http: `http://localhost:${port}/health`, timeoutMs: 5000 })],
    ] as const) {
      test(`${label}: a foreign listener on the check's port refuses the start with PORT_IN_USE before anything runs`, async () => {
        await withSupervisor('ready-port-held', {}, async ({ supervisor, events }) => {
          const port = await freePort();
          const foreign = await startForeignListener(port);
          try {
            // The service would crash-loop on EADDRINUSE while the foreign listener answered its check.
            const web = svc('web', { command: NODE, args: ['-e', serverCode(port)], restart: 'always', ready: ready(port) });
            supervisor.define(web);
            const error = await rejectsWith(supervisor.start('web'), 'PORT_IN_USE', 'start web');
            assert.match(error.message, new RegExp(`checks readiness on port ${port},`));
            assert.match(error.message, new RegExp(`pid ${foreign.pid} `));
            assert.match(error.message, /not tend's/);
            const info = supervisor.info('web');
            assert.equal(info.state, 'failed');
            assert.equal(info.pid, null);
            assert.equal(statesOf(events, 'web').includes('starting'), false, `web was never spawned: ${statesOf(events, 'web').join(', ')}`);
            assert.deepEqual(byTag(web), []);
            assert.equal(foreign.exitCode, null, 'the foreign listener is left alone');
          } finally {
            await stopForeign(foreign);
          }
        });
      });
    }

    test('a foreign listener on the check\'s port is stopped by --free-port --force, like a declared port\'s', async () => {
      await withSupervisor('ready-port-force', {}, async ({ supervisor }) => {
        const port = await freePort();
        const foreign = await startForeignListener(port);
        try {
          supervisor.define(svc('web', { command: NODE, args: ['-e', serverCode(port)], ready: { tcp: port, timeoutMs: 5000 } }));
          const report = await supervisor.start('web', { freePort: true, force: true });
          assert.deepEqual(
            report.freed.map((f) => [f.port, f.pid, f.tend]),
            [[port, foreign.pid, false]],
          );
          await waitForExit(foreign, { what: 'the foreign listener, stopped by --force' });
          assert.equal(report.service.state, 'running');
          assert.equal(report.service.ready, true);
        } finally {
          if (foreign.exitCode === null && foreign.signalCode === null) await stopForeign(foreign);
        }
      });
    });

    test('a listener that takes the port after the check before start does not make the service ready', async () => {
      await withSupervisor('ready-port-race', {}, async ({ supervisor, events }) => {
        const port = await freePort();
        // Never listens: only a process outside its tree will answer on the port.
        const web = svc('web', { ready: { tcp: port, timeoutMs: 5000 } });
        supervisor.define(web);
        const starting = pending(supervisor.start('web'));
        // Spawned: the port check is behind it, the readiness wait under way.
        await waitForSpawn(supervisor, 'web');
        const foreign = await startForeignListener(port);
        try {
          const error = await rejectsWith(starting, 'SERVICE_NOT_READY', 'start web');
          // The last attempt saw the foreign holder (not a refused connection): the race was really run.
          assert.match(error.message, new RegExp(`port ${port} is held by pid ${foreign.pid} \\(`));
          assert.match(error.message, /not by the service's tree/);
          assert.equal(statesOf(events, 'web').includes('running'), false, `web never ran as ready: ${statesOf(events, 'web').join(', ')}`);
          assert.equal(supervisor.info('web').state, 'failed');
          assert.equal(await isPortFree(port), false, 'the foreign listener still holds its port');
        } finally {
          await stopForeign(foreign);
        }
      });
    });

    test('the service\'s own listener, a grandchild of its command, makes it ready (negative control)', async () => {
      await withSupervisor('ready-port-own', {}, async ({ supervisor }) => {
        const port = await freePort();
        const code = serverCode(port);
        const web = svc('web', { command: '/bin/sh', args: ['-c', `"$0" -e "$1"; echo ended`, NODE, code], ready: { tcp: port, timeoutMs: 5000 } });
        supervisor.define(web);
        const report = await supervisor.start('web');
        assert.equal(report.service.state, 'running');
        assert.equal(report.service.ready, true);
        assert.ok(report.service.pids.length >= 2, `sh and node run: ${JSON.stringify(report.service.pids)}`);
      });
    });
  });
});
