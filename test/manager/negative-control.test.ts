// Negative control for the leak checks: the same fixtures, started with a raw
// child_process.spawn and ended the way most programs end their children
// (child.kill() on the direct child), must leave survivors that the /proc scan
// finds, and a port that stays held. If these tests fail, the containment
// tests' "zero survivors" proves nothing.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { RUN_VARIABLE, cleanupByMarker } from '../helpers/cleanup.js';
import { PATH, awaitFixtureReady, grandchildren, portHolder, setsidDaemon } from '../helpers/fixtures.js';
import { isPortFree } from '../helpers/ports.js';
import { describeProcesses, findMarked, survivorsOf } from '../helpers/proc-scan.js';
import { waitFor, waitForExit } from '../helpers/wait.js';

const RUN = `negative-control-${randomBytes(6).toString('hex')}`;
/** A TEND_ID prefix of this file's own, as tend never hands out. */
const PREFIX = `${RUN}-`;
const children = new Set<ChildProcess>();

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await cleanupByMarker({ variable: RUN_VARIABLE, value: RUN });
});

describe('raw spawn and child.kill() leak (negative control)', { concurrency: true }, () => {
  for (const fixture of [grandchildren, setsidDaemon, portHolder]) {
    test(`${fixture.title}: the scan sees the survivors`, async () => {
      const marker = `${PREFIX}${fixture.key}`;
      const child = spawn(fixture.command, fixture.args, {
        env: { PATH, TEND_ID: marker, [RUN_VARIABLE]: RUN },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.add(child);
      const ready = await awaitFixtureReady(fixture, { value: marker }, fixture.readyLine ? child.stdout : undefined);
      if (fixture.holdsPort) assert.equal(await isPortFree(ready.port ?? 0), false, `port ${ready.port} must be held while the tree runs`);

      child.kill();
      const status = await waitForExit(child, { what: `${fixture.key}'s direct child` });
      assert.equal(status.signal, 'SIGTERM', 'the direct child itself was ended');

      const survivors = survivorsOf(marker, ready.processes);
      assert.ok(survivors.length > 0, `the leak check must see what child.kill() left behind; the tree was:\n${describeProcesses(ready.processes)}`);
      assert.ok(!survivors.some((p) => p.pid === child.pid), 'the direct child is not among the survivors');
      assert.deepEqual(
        findMarked({ prefix: PREFIX }).filter((p) => p.value === marker).map((p) => p.pid).sort(),
        findMarked({ value: marker }).map((p) => p.pid).sort(),
        'a prefix scan finds the same processes as an exact one',
      );
      if (fixture.holdsPort) assert.equal(await isPortFree(ready.port ?? 0), false, `port ${ready.port} stays held by the orphaned server`);

      const killed = await cleanupByMarker({ value: marker }, { quiet: true });
      assert.ok(killed.length > 0, 'cleanupByMarker found the survivors');
      assert.deepEqual(survivorsOf(marker, ready.processes), [], 'cleanupByMarker left nothing alive');
      if (fixture.holdsPort) {
        // SIGKILLed, the server closes its socket once its last thread has exited.
        await waitFor(() => isPortFree(ready.port ?? 0), { what: `port ${ready.port} to be free after the cleanup`, timeoutMs: 5_000 });
      }
    });
  }
});
