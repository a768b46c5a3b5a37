// The supervisor in-process, against real process trees. Restart policies and
// their backoff. Every wait is for an event or a condition with a deadline;
// after each test nothing the services started may be alive.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SH } from '../helpers/fixtures.js';
import { checkNothingSurvives, svc, withSupervisor, waitForService, waitForState, statesOf, triggerPath, waitForFileCode } from './harness.js';

checkNothingSurvives();

describe('Supervisor', () => {
  describe('restart policies', () => {
    test('never: an exit is final (exited, with the code), no restart', async () => {
      await withSupervisor('never', {}, async (ctx) => {
        const trigger = triggerPath(ctx, 'never');
        ctx.supervisor.define(svc('job', { command: SH, args: ['-c', `${waitForFileCode(trigger)}; exit 3`], restart: 'never' }));
        await ctx.supervisor.start('job');
        writeFileSync(trigger, '');
        const info = await waitForState(ctx.supervisor, 'job', 'exited');
        assert.match(info.reason ?? '', /exit code 3/);
        assert.match(info.reason ?? '', /policy never/);
        assert.equal(info.restarts, 0);
        assert.equal(info.last_exit?.code, 3);
        assert.equal(info.pid, null);
        assert.ok(!statesOf(ctx.events, 'job').includes('backoff'));
      });
    });

    test('on-failure: a clean exit is "exited", not restarted', async () => {
      await withSupervisor('onfail-clean', {}, async (ctx) => {
        const trigger = triggerPath(ctx, 'clean');
        ctx.supervisor.define(
          svc('job', { command: SH, args: ['-c', `${waitForFileCode(trigger)}; exit 0`], restart: 'on-failure', restartLimit: { maxRestarts: 5, backoffMs: 10, maxBackoffMs: 10 } }),
        );
        await ctx.supervisor.start('job');
        writeFileSync(trigger, '');
        const info = await waitForState(ctx.supervisor, 'job', 'exited');
        assert.match(info.reason ?? '', /exited cleanly/);
        assert.equal(info.restarts, 0);
        assert.equal(info.last_exit?.code, 0);
        assert.deepEqual(statesOf(ctx.events, 'job'), ['stopped', 'queued', 'starting', 'running', 'exited']);
      });
    });

    test('on-failure: a failing exit is restarted, backoff growing, then failed after maxRestarts with a reason', async () => {
      await withSupervisor('onfail', {}, async (ctx) => {
        const trigger = triggerPath(ctx, 'fail');
        ctx.supervisor.define(
          svc('job', { command: SH, args: ['-c', `${waitForFileCode(trigger)}; exit 4`], restart: 'on-failure', restartLimit: { maxRestarts: 3, backoffMs: 40, maxBackoffMs: 100 } }),
        );
        await ctx.supervisor.start('job');
        writeFileSync(trigger, '');
        const info = await waitForState(ctx.supervisor, 'job', 'failed');
        assert.match(info.reason ?? '', /gave up after 3 restarts in a row: last exit code 4/);
        assert.equal(info.restarts, 3);
        assert.equal(info.pid, null);
        const backoffs = ctx.events.filter((e) => e.name === 'job' && e.state === 'backoff').map((e) => e.reason);
        assert.deepEqual(backoffs, ['exit code 4; restart 1 in 40 ms', 'exit code 4; restart 2 in 80 ms', 'exit code 4; restart 3 in 100 ms']);
        assert.equal(ctx.events.filter((e) => e.name === 'job' && e.state === 'starting').length, 4, 'the first start and three restarts');
      });
    });

    test('always: even a clean exit is restarted, each run a new process', async () => {
      await withSupervisor('always', {}, async (ctx) => {
        const trigger = triggerPath(ctx, 'always');
        const pidsFile = join(ctx.stateDir, 'pids');
        ctx.supervisor.define(
          svc('job', {
            command: SH,
            args: ['-c', `echo $$ >> '${pidsFile}'; ${waitForFileCode(trigger)}; exit 0`],
            restart: 'always',
            restartLimit: { maxRestarts: 2, backoffMs: 10, maxBackoffMs: 1000 },
          }),
        );
        await ctx.supervisor.start('job');
        writeFileSync(trigger, '');
        const info = await waitForState(ctx.supervisor, 'job', 'failed');
        assert.match(info.reason ?? '', /gave up after 2 restarts in a row: last exit code 0/);
        assert.equal(info.restarts, 2);
        const backoffs = ctx.events.filter((e) => e.name === 'job' && e.state === 'backoff').map((e) => e.reason);
        assert.deepEqual(backoffs, ['exit code 0; restart 1 in 10 ms', 'exit code 0; restart 2 in 20 ms']);
        const pids = readFileSync(pidsFile, 'utf8').trim().split('\n');
        assert.equal(pids.length, 3, `three runs: ${pids.join(', ')}`);
        assert.equal(new Set(pids).size, 3, `each run a new process: ${pids.join(', ')}`);
      });
    });

    test('a start by hand after failed starts the count over', async () => {
      await withSupervisor('restart-again', {}, async (ctx) => {
        const trigger = triggerPath(ctx, 'again');
        ctx.supervisor.define(svc('job', { command: SH, args: ['-c', `${waitForFileCode(trigger)}; exit 1`], restart: 'always', restartLimit: { maxRestarts: 1, backoffMs: 5, maxBackoffMs: 5 } }));
        await ctx.supervisor.start('job');
        writeFileSync(trigger, '');
        await waitForState(ctx.supervisor, 'job', 'failed');
        assert.equal(ctx.supervisor.info('job').restarts, 1);
        const from = ctx.events.length;
        // It exits at once now (the trigger exists): the start may see it already gone.
        await ctx.supervisor.start('job').catch(() => undefined);
        const info = await waitForService(ctx.supervisor, 'job', (i) => i.state === 'failed' && ctx.events.length > from, 'failed again');
        assert.equal(info.restarts, 1);
        assert.equal(ctx.events.slice(from).filter((e) => e.name === 'job' && e.state === 'backoff').length, 1);
      });
    });
  });
});
