// The supervisor in-process, against real process trees. Declared ports:
// refused when held, freed on request, and what is freed. Every wait is for an
// event or a condition with a deadline; after each test nothing the services
// started may be alive.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NODE } from '../helpers/fixtures.js';
import { isPortFree } from '../helpers/ports.js';
import { waitForExit, withDeadline } from '../helpers/wait.js';
import { checkNothingSurvives, DEADLINE_MS, svc, byTag, withSupervisor, rejectsWith, assertGone, freePort, serverCode, startForeignListener } from './harness.js';

checkNothingSurvives();

describe('Supervisor', () => {
  describe('ports', () => {
    test('a declared port held by a foreign process: PORT_IN_USE naming its pid; freePort alone leaves it', async () => {
      await withSupervisor('port-foreign', {}, async ({ supervisor }) => {
        const port = await freePort();
        const foreign = await startForeignListener(port);
        try {
          const web = svc('web', { ports: [port] });
          supervisor.define(web);
          const error = await rejectsWith(supervisor.start('web'), 'PORT_IN_USE', 'start web');
          assert.match(error.message, new RegExp(`pid ${foreign.pid} `));
          assert.match(error.message, /not tend's/);
          assert.equal(supervisor.info('web').state, 'failed');

          const again = await rejectsWith(supervisor.start('web', { freePort: true }), 'PORT_IN_USE', 'start web --free-port');
          assert.match(again.message, new RegExp(`pid ${foreign.pid} `));
          assert.match(again.message, /--force/);
          assert.equal(foreign.exitCode, null);
          assert.equal(foreign.signalCode, null);
          assert.equal(await isPortFree(port), false);
          assert.deepEqual(byTag(web), []);
        } finally {
          foreign.kill('SIGKILL');
          await waitForExit(foreign, { what: 'the foreign listener' });
        }
      });
    });

    test('freePort + force stops a foreign holder and reports it in freed', async () => {
      await withSupervisor('port-force', {}, async ({ supervisor }) => {
        const port = await freePort();
        const foreign = await startForeignListener(port);
        try {
          supervisor.define(svc('web', { ports: [port] }));
          const exited = waitForExit(foreign, { what: 'the foreign listener', timeoutMs: DEADLINE_MS });
          const report = await withDeadline(supervisor.start('web', { freePort: true, force: true }), { what: 'start web --free-port --force', timeoutMs: DEADLINE_MS });
          assert.equal(report.service.state, 'running');
          assert.equal(report.freed.length, 1);
          assert.equal(report.freed[0]?.port, port);
          assert.equal(report.freed[0]?.pid, foreign.pid);
          assert.equal(report.freed[0]?.tend, false);
          assert.match(report.freed[0]?.command ?? '', /node/);
          const status = await exited;
          assert.equal(status.signal, 'SIGTERM');
          assert.equal(await isPortFree(port), true);
        } finally {
          foreign.kill('SIGKILL');
          await waitForExit(foreign, { what: 'the foreign listener' });
        }
      });
    });

    test('a port held by another service of the supervisor is freed by stopping that service', async () => {
      await withSupervisor('port-service', {}, async ({ supervisor }) => {
        const port = await freePort();
        const holder = svc('holder', { command: NODE, args: ['-e', serverCode(port)], ports: [port], ready: { tcp: port, timeoutMs: DEADLINE_MS } });
        supervisor.define(holder);
        supervisor.define(svc('taker', { ports: [port] }));
        await supervisor.start('holder');
        const holderInfo = supervisor.info('holder');
        const seen = byTag(holder);
        await rejectsWith(supervisor.start('taker'), 'PORT_IN_USE', 'start taker without freePort');
        assert.equal(supervisor.info('holder').state, 'running');
        const report = await withDeadline(supervisor.start('taker', { freePort: true }), { what: 'start taker --free-port', timeoutMs: DEADLINE_MS });
        assert.equal(report.service.state, 'running');
        assert.deepEqual(
          report.freed.map((f) => ({ port: f.port, pid: f.pid, tend: f.tend })),
          [{ port, pid: holderInfo.pid, tend: true }],
        );
        const holderAfter = supervisor.info('holder');
        assert.equal(holderAfter.state, 'stopped');
        assert.equal(holderAfter.pid, null);
        assertGone(seen, 'the holder service');
      });
    });
  });
});
