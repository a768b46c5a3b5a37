// `tend ps` far above the size at which one response line used to overflow
// (1 MiB, about 2,400 services): 3,000 services defined but not running hold
// as much JSON as 3,000 running ones, without the cost of 3,000 processes.
// Stored as a daemon keeps definitions (not running, not wanted), loaded by a
// real daemon, listed with the real CLI, which must return every one of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { daemonPaths } from '../../src/daemon/paths.js';
import { MAX_LINE_BYTES } from '../../src/daemon/protocol.js';
import { checkDefinition, ServiceStore } from '../../src/supervisor/service-store.js';
import { scanProcesses } from '../helpers/proc-scan.js';
import { removeDir, repoRoot, Running } from '../helpers/unit-local.js';

const TEND = join(repoRoot, 'dist/src/bin/tend.js');
const SERVICES = 3_000;

interface PsReport {
  daemon: boolean;
  services: { name: string; state: string; pid: number | null; args: string[] }[];
}

test(`ps lists ${SERVICES} defined services, twice the old one-line limit, in text and JSON`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tps-'));
  chmodSync(dir, 0o700);
  const env = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: dir, TEND_HOME: dir, LANG: 'C' };
  const tend = (args: string[]) => new Running(process.execPath, [TEND, ...args], { env, cwd: dir }).result(60_000);
  try {
    // An argument of some length, as real commands have, so the listing is well past the limit.
    const padding = `--config=${dir}/${'x'.repeat(300)}.json`;
    const name = (n: number): string => `svc-${String(n).padStart(5, '0')}`;
    // Written with the daemon's own store, as a daemon that defined them would have left them.
    const store = new ServiceStore(daemonPaths(dir).services, (message) => assert.fail(message));
    for (let n = 0; n < SERVICES; n++) {
      const definition = checkDefinition({
        name: name(n),
        command: 'sleep',
        args: ['1000', padding],
        cwd: dir,
        env: {},
        inheritEnv: false,
        restart: 'never',
        ports: [],
        dependsOn: [],
        stopSignal: 'SIGTERM',
        stopTimeoutMs: 5_000,
        strategy: 'auto',
        exemptFromLimit: false,
      });
      store.save({ definition, wanted: false });
    }
    const started = await tend(['daemon', 'start', '--json']);
    assert.equal(started.code, 0, started.stderr);
    const status = JSON.parse((await tend(['daemon', 'status', '--json'])).stdout) as { services: number };
    assert.equal(status.services, SERVICES, 'the daemon did not load every stored definition');

    const json = await tend(['ps', '--json']);
    assert.equal(json.code, 0, `tend ps --json exited ${json.code}: ${json.stderr}`);
    const report = JSON.parse(json.stdout) as PsReport;
    const compact = Buffer.byteLength(JSON.stringify(report.services));
    assert.ok(compact > 2 * MAX_LINE_BYTES, `the listing is only ${compact} bytes: not well past the old limit`);
    assert.equal(report.daemon, true);
    assert.equal(report.services.length, SERVICES);
    const names = new Set(report.services.map((s) => s.name));
    for (let n = 0; n < SERVICES; n++) assert.ok(names.has(name(n)), `ps --json does not list ${name(n)}`);
    for (const s of report.services) {
      assert.equal(s.pid, null, `${s.name} is defined only, yet has a pid`);
      assert.deepEqual(s.args, ['1000', padding]);
    }

    const text = await tend(['ps']);
    assert.equal(text.code, 0, `tend ps exited ${text.code}: ${text.stderr}`);
    const listed = new Set(text.stdout.split('\n').flatMap((line) => line.split(/\s+/)));
    for (let n = 0; n < SERVICES; n++) assert.ok(listed.has(name(n)), `tend ps does not list ${name(n)}`);
  } finally {
    const stopped = await tend(['daemon', 'stop', '--force']);
    const daemons = scanProcesses({ live: true }).filter((p) => p.env.get('TEND_HOME') === dir);
    for (const p of daemons) process.kill(p.pid, 'SIGKILL');
    removeDir(dir);
    assert.equal(stopped.code, 0, `tend daemon stop exited ${stopped.code}: ${stopped.stderr}`);
    assert.deepEqual(daemons.map((p) => `${p.pid} ${p.cmdline}`), [], 'a daemon outlived `tend daemon stop`');
  }
});
