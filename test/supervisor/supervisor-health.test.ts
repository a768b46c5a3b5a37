// The supervisor in-process, against real process trees. Unresponsive services:
// CPU pinned for a window, liveness probes failing. Every wait is for an event
// or a condition with a deadline; after each test nothing the services started
// may be alive.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NODE, SH } from '../helpers/fixtures.js';
import { survivorsOf } from '../helpers/proc-scan.js';
import { checkNothingSurvives, NICE, svc, withSupervisor, waitForService, freePort, serverCode } from './harness.js';

checkNothingSurvives();

describe('Supervisor', () => {
  describe('unresponsive', () => {
    // Two busy loops at the highest priority (root may raise it; otherwise nice only warns): the
    // tree then really uses a whole CPU over the window even on a loaded shared machine.
    const loop = `${NICE} -n -20 ${NODE} -e 'for (;;) {}'`;
    const busy = ['-c', `${loop} & exec ${loop}`];

    test('cpu_window: a busy loop is marked unresponsive with a reason, and stays running', async () => {
      await withSupervisor('cpu', { sampleIntervalMs: 100 }, async ({ supervisor }) => {
        supervisor.define(svc('spin', { command: SH, args: busy, unresponsive: { cpuWindowMs: 500, probeIntervalMs: undefined, probeFailures: 1, restart: false } }));
        supervisor.define(svc('idle', { unresponsive: { cpuWindowMs: 500, probeIntervalMs: undefined, probeFailures: 1, restart: false } }));
        await supervisor.start('idle');
        const { service } = await supervisor.start('spin');
        const info = await waitForService(supervisor, 'spin', (i) => i.unresponsive, 'unresponsive', 30_000);
        assert.match(info.reason ?? '', /CPU at 100% for 500 ms/);
        assert.equal(info.state, 'running');
        assert.equal(info.pid, service.pid);
        assert.equal(info.restarts, 0);
        assert.equal(supervisor.info('idle').unresponsive, false);

      });
    });

    test('cpu_window with restart: the service is restarted (restarts counted, a new pid)', async () => {
      await withSupervisor('cpu-restart', { sampleIntervalMs: 100 }, async ({ supervisor }) => {
        supervisor.define(svc('spin', { command: SH, args: busy, unresponsive: { cpuWindowMs: 500, probeIntervalMs: undefined, probeFailures: 1, restart: true } }));
        const { service } = await supervisor.start('spin');
        const info = await waitForService(supervisor, 'spin', (i) => i.restarts >= 1 && i.state === 'running' && i.pid !== null, 'restarted and running', 30_000);
        assert.notEqual(info.pid, service.pid);
        assert.notEqual(info.handle, service.handle);
        assert.deepEqual(survivorsOf(service.handle as string), []);
      });
    });

    test('probe failures: the readiness check failing probeFailures times in a row marks it unresponsive', async () => {
      await withSupervisor('probe', {}, async ({ supervisor }) => {
        const port = await freePort();
        // Closes its listening socket on the first connection (the readiness check's).
        const code = serverCode(port, 'c.destroy(); s.close()');
        supervisor.define(svc('flaky', { command: NODE, args: ['-e', code], ready: { tcp: port, timeoutMs: 5000 }, unresponsive: { cpuWindowMs: undefined, probeIntervalMs: 50, probeFailures: 2, restart: false } }));
        const { service } = await supervisor.start('flaky');
        assert.equal(service.ready, true);
        assert.equal(service.unresponsive, false);
        // Each liveness probe retries for up to the check's timeout (5 s at most) before it counts as failed.
        const info = await waitForService(supervisor, 'flaky', (i) => i.unresponsive, 'unresponsive', 30_000);
        assert.match(info.reason ?? '', /readiness check failed 2 times in a row/);
        assert.equal(info.state, 'running');
        assert.equal(info.pid, service.pid);
      });
    });
  });
});
