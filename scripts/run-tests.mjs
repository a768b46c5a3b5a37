#!/usr/bin/env node
// Runs the compiled test suite with node's test runner, then fails the run if
// any process carrying tend's marker variable, or any tend daemon, that the
// suite started outlived it: a suite that leaves processes behind is a
// failing suite, whatever its assertions said. Processes of anyone else on
// the machine (a developer's daemon, another checkout's suite) are not the
// suite's and are neither counted nor touched; leak-scope.mjs says how the
// two are told apart.
//
// Usage: run-tests.mjs [--dir=<tests dir>] [path-filter...]
// TEND_LEAK_CHECK_CGROUP=off checks without a cgroup, as on a machine
// without a writable cgroup v2 (to see what the check then misses).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createSuiteCgroup, joinCgroupArgv, readSuiteHandles, removeSuiteCgroup, suiteSurvivors } from './leak-scope.mjs';

function collectTests(dir, out = []) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) collectTests(path, out);
    else if (entry.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const args = process.argv.slice(2);
const testsDir = args.find((a) => a.startsWith('--dir='))?.slice('--dir='.length) ?? 'dist/test';
const filter = args.filter((a) => !a.startsWith('--dir='));
const files = collectTests(testsDir)
  .filter((f) => filter.length === 0 || filter.some((p) => f.includes(p)))
  .sort();

// One root for everything the suite writes: its TEND_HOME and, through
// TMPDIR, every mkdtemp(tmpdir()) of the tests (their state dirs, daemon
// homes). Short, as daemon sockets live below it and a socket path has at
// most 107 bytes.
const root = realpathSync(mkdtempSync(join(tmpdir(), 'ts-')));
const stateDir = join(root, 'home');
mkdirSync(stateDir, { mode: 0o700 });
const cgroup =
  process.env.TEND_LEAK_CHECK_CGROUP === 'off' ? { reason: 'TEND_LEAK_CHECK_CGROUP=off' } : createSuiteCgroup(`tend-suite-${basename(root)}`);
if (cgroup.reason !== undefined) {
  console.log(`leak check: without a cgroup (${cgroup.reason}); leaks of managers without a state directory go unseen`);
}

const command = [process.execPath, '--test', '--test-concurrency=2', ...files];
const argv = cgroup.dir === undefined ? command : joinCgroupArgv(cgroup.dir, command);
const suite = spawn(argv[0], argv.slice(1), {
  stdio: 'inherit',
  env: { ...process.env, TEND_HOME: stateDir, TMPDIR: root },
});
// The runner outlives an interrupted suite, to check and clean up after it:
// Ctrl-C reaches the suite from the terminal, and SIGTERM/SIGHUP are passed on.
process.on('SIGINT', () => undefined);
for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => suite.kill(signal));
const [exitCode] = await once(suite, 'exit');

const leaked = suiteSurvivors({ root, cgroup: cgroup.path, handles: readSuiteHandles(root) });
let cleanupFailed = false;
if (cgroup.dir !== undefined) {
  try {
    const killed = await removeSuiteCgroup(cgroup.dir);
    if (killed.length > 0) console.error(`leak check: SIGKILLed ${killed.length} process(es) left in the suite's cgroup: ${killed.join(', ')}`);
  } catch (error) {
    console.error(error.message);
    cleanupFailed = true;
  }
}
rmSync(root, { recursive: true, force: true });

if (leaked.length > 0) {
  console.error(`\nleak check: ${leaked.length} process(es) carrying TEND_ID (or tend daemons) that the suite started outlived it:`);
  for (const p of leaked) console.error(`  ${p.pid} ${p.cmdline} (${p.reason})`);
  process.exit(1);
}
console.log('leak check: no process carrying TEND_ID and no tend daemon that the suite started outlived it');
process.exit(cleanupFailed ? 1 : (exitCode ?? 1));
