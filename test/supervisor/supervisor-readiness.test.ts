// The supervisor in-process, against real process trees. Readiness checks of
// services: what passes, what fails and how a start reports it. Every wait is
// for an event or a condition with a deadline; after each test nothing the
// services started may be alive.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE, SH } from '../helpers/fixtures.js';
import { isPortFree } from '../helpers/ports.js';
import { procIdentity } from '../helpers/proc-scan.js';
import { SLEEP } from '../helpers/state.js';
import { withDeadline } from '../helpers/wait.js';
import { checkNothingSurvives, DEADLINE_MS, svc, byTag, withSupervisor, pending, waitForSpawn, rejectsWith, freePort, serverCode, statesOf, triggerPath } from './harness.js';

checkNothingSurvives();

describe('Supervisor', () => {
  describe('readiness', () => {
    test('tcp: starting until the port accepts, then running and ready', async () => {
      await withSupervisor('ready-tcp', {}, async (ctx) => {
        const port = await freePort();
        const trigger = triggerPath(ctx, 'listen');
        const code = `const fs = require('fs'); const t = setInterval(() => { if (fs.existsSync(${JSON.stringify(trigger)})) { clearInterval(t); ${serverCode(port)} } }, 20);`;
        ctx.supervisor.define(svc('web', { command: NODE, args: ['-e', code], ready: { tcp: port, timeoutMs: DEADLINE_MS } }));
        const starting = pending(ctx.supervisor.start('web'));
        const spawned = await waitForSpawn(ctx.supervisor, 'web');
        assert.equal(spawned.state, 'starting');
        assert.equal(spawned.ready, false);
        writeFileSync(trigger, '');
        const report = await withDeadline(starting, { what: 'start web', timeoutMs: DEADLINE_MS });
        assert.equal(report.service.state, 'running');
        assert.equal(report.service.ready, true);
        assert.equal(await isPortFree(port), false);
      });
    });

    test('tcp timeout: SERVICE_NOT_READY, state failed, the whole tree stopped', async () => {
      await withSupervisor('ready-timeout', {}, async (ctx) => {
        const port = await freePort();
        const pidsFile = join(ctx.stateDir, 'pids');
        const slow = svc('slow', { command: SH, args: ['-c', `echo $$ > '${pidsFile}'; ${SLEEP} 1000 & echo $! >> '${pidsFile}'; ${SLEEP} 1000`], ready: { tcp: port, timeoutMs: 1500 } });
        ctx.supervisor.define(slow);
        const error = await rejectsWith(ctx.supervisor.start('slow'), 'SERVICE_NOT_READY', 'start slow');
        assert.match(error.message, new RegExp(`tcp 127\\.0\\.0\\.1:${port}`));
        const info = ctx.supervisor.info('slow');
        assert.equal(info.state, 'failed');
        assert.match(info.reason ?? '', /^not ready: /);
        assert.equal(info.pid, null);
        assert.equal(info.ready, false);
        const pids = readFileSync(pidsFile, 'utf8').trim().split('\n').map(Number);
        assert.equal(pids.length, 2, 'the shell and its background sleep had started');
        for (const pid of pids) {
          const id = procIdentity(pid);
          assert.ok(id === undefined || id.state === 'Z', `pid ${pid} is still alive (${id?.state})`);
        }
        assert.deepEqual(byTag(slow), []);
        // Not restarted: a readiness failure is not a crash.
        assert.ok(!statesOf(ctx.events, 'slow').includes('backoff'));
      });
    });

    test('log: a regex on the service output; a line that never comes fails with the last line seen', async () => {
      await withSupervisor('ready-log', {}, async ({ supervisor }) => {
        supervisor.define(svc('logger', { command: SH, args: ['-c', `echo booting; echo 'listening on 4321'; exec ${SLEEP} 1000`], ready: { log: 'listening on (\\d+)$', timeoutMs: DEADLINE_MS } }));
        const report = await supervisor.start('logger');
        assert.equal(report.service.state, 'running');
        assert.equal(report.service.ready, true);

        supervisor.define(svc('mute', { command: SH, args: ['-c', `echo booting; echo 'listening on port'; exec ${SLEEP} 1000`], ready: { log: 'listening on (\\d+)$', timeoutMs: 1000 } }));
        const error = await rejectsWith(supervisor.start('mute'), 'SERVICE_NOT_READY', 'start mute');
        assert.match(error.message, /2 line\(s\) seen, the last \\?"listening on port\\?"/);
        assert.equal(supervisor.info('mute').state, 'failed');
        assert.equal(supervisor.info('logger').state, 'running');
      });
    });
    test('a service that exits before it is ready: SERVICE_START_FAILED naming it, not the readiness error', async () => {
      await withSupervisor('ready-exit', {}, async ({ supervisor }) => {
        const port = await freePort();
        supervisor.define(svc('quitter', { command: SH, args: ['-c', 'exit 3'], ready: { tcp: port, timeoutMs: DEADLINE_MS } }));
        const error = await rejectsWith(supervisor.start('quitter'), 'SERVICE_START_FAILED', 'start quitter');
        assert.equal(error.details.name, 'quitter');
        assert.match(error.message, /"quitter"/);
        assert.match(error.message, /exit code 3/);
        const info = supervisor.info('quitter');
        assert.equal(info.state, 'exited');
        assert.equal(info.last_exit?.code, 3);
      });
    });
  });
});
