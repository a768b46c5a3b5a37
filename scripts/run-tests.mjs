#!/usr/bin/env node
// Runs the compiled test suite with node's test runner, then fails the run if
// any process carrying tend's marker variable, or any tend daemon, outlived
// it: a suite that leaves processes behind is a failing suite, whatever its
// assertions said.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function collectTests(dir, out = []) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) collectTests(path, out);
    else if (entry.endsWith('.test.js')) out.push(path);
  }
  return out;
}

function markedSurvivors() {
  const found = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let environ;
    try {
      environ = readFileSync(`/proc/${name}/environ`, 'latin1');
    } catch {
      continue;
    }
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${name}/cmdline`, 'latin1').replaceAll('\0', ' ').trim();
    } catch {
      /* exited while we looked */
    }
    // A daemon renames itself (process.title) to `tend daemon`.
    const daemon = /(tend\.js daemon run|^tend daemon)$/.test(cmd);
    if (!daemon && !environ.split('\0').some((v) => v.startsWith('TEND_ID='))) continue;
    found.push(`${name} ${cmd}`);
  }
  return found;
}

const filter = process.argv.slice(2);
const files = collectTests('dist/test')
  .filter((f) => filter.length === 0 || filter.some((p) => f.includes(p)))
  .sort();
const before = new Set(markedSurvivors());
// The suite keeps its records, manager files and lifecycle log to itself.
const stateDir = mkdtempSync(join(tmpdir(), 'tend-test-state-'));
const run = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
  env: { ...process.env, TEND_HOME: stateDir },
});
rmSync(stateDir, { recursive: true, force: true });
const leaked = markedSurvivors().filter((p) => !before.has(p));
if (leaked.length > 0) {
  console.error(`\nleak check: ${leaked.length} process(es) carrying TEND_ID (or tend daemons) outlived the test suite:`);
  for (const p of leaked) console.error(`  ${p}`);
  process.exit(1);
}
console.log('leak check: no process carrying TEND_ID and no tend daemon outlived the test suite');
process.exit(run.status ?? 1);
