#!/usr/bin/env node
// Builds tend's native helpers (native/bin/tend-shim, native/bin/tend-nsinit,
// native/bin/tend-reaper) and records the outcome in native/bin/status.json,
// which `tend detect` reads to explain a missing helper.
//
// This runs as the package's install script: it must be quick and must never
// fail the install. Without the helpers tend still works with weaker
// containment, so every failure here is a warning and the exit code is 0.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = join(root, 'native');
const binDir = join(srcDir, 'bin');
const statusPath = join(binDir, 'status.json');
const shimSrc = join(srcDir, 'shim.c');
const nsinitSrc = join(srcDir, 'nsinit.c');
const reaperSrc = join(srcDir, 'reaper.c');
const shimBin = join(binDir, 'tend-shim');
const nsinitBin = join(binDir, 'tend-nsinit');
const reaperBin = join(binDir, 'tend-reaper');
const selfPath = fileURLToPath(import.meta.url);

const NOLIBC_FLAGS = [
  '-Os',
  '-static',
  '-nostdlib',
  '-fno-pie',
  '-no-pie',
  '-fno-stack-protector',
  '-fno-builtin',
  '-fno-asynchronous-unwind-tables',
  '-s',
];
const COMPILE_TIMEOUT_MS = 60_000;

function log(line) {
  process.stdout.write(`tend: ${line}\n`);
}

function writeStatus(status) {
  try {
    mkdirSync(binDir, { recursive: true });
    const tmp = `${statusPath}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(status, null, 2)}\n`);
    renameSync(tmp, statusPath);
  } catch (err) {
    log(`warning: cannot write ${statusPath}: ${err.message}`);
  }
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return null;
  }
}

// Fresh when all helpers exist and are newer than every input, including this
// script (its flags decide what gets built).
function upToDate() {
  if (!existsSync(statusPath)) return false;
  const newestSource = Math.max(
    mtime(shimSrc) ?? Infinity,
    mtime(nsinitSrc) ?? Infinity,
    mtime(reaperSrc) ?? Infinity,
    mtime(selfPath) ?? 0,
  );
  const bins = [mtime(shimBin), mtime(nsinitBin), mtime(reaperBin)];
  return bins.every((m) => m !== null && m > newestSource);
}

function splitCommand(text) {
  return text.trim().split(/\s+/).filter(Boolean);
}

function findCompiler() {
  const candidates = [];
  if (process.env.CC && process.env.CC.trim() !== '') candidates.push(splitCommand(process.env.CC));
  candidates.push(['cc'], ['gcc'], ['clang']);
  for (const argv of candidates) {
    const [cmd, ...pre] = argv;
    const r = spawnSync(cmd, [...pre, '--version'], { stdio: 'ignore', timeout: 10_000 });
    if (r.status === 0) return argv;
  }
  return null;
}

function firstLines(text, n = 3) {
  return text.trim().split('\n').slice(0, n).join(' | ');
}

// Compiles to a temporary name and renames it into place, so a killed or failed
// build never leaves a half-written helper that tend would then try to exec.
function compile(cc, flags, src, out) {
  const tmp = `${out}.${process.pid}.tmp`;
  const [cmd, ...pre] = cc;
  const r = spawnSync(cmd, [...pre, ...flags, '-o', tmp, src], {
    encoding: 'utf8',
    timeout: COMPILE_TIMEOUT_MS,
  });
  if (r.error || r.status !== 0) {
    rmSync(tmp, { force: true });
    const why = r.error ? r.error.message : firstLines(`${r.stderr ?? ''}${r.stdout ?? ''}`) || `exit ${r.status}`;
    return { ok: false, error: `${cmd} ${flags.join(' ')} failed: ${why}` };
  }
  return { ok: true, tmp };
}

// A shim that compiled can still be broken (a toolchain that silently mislinks
// a freestanding binary): run it once before trusting it. Executing itself
// with no arguments covers startup, argv, execve, write and exit.
function smokeTestShim(path) {
  const r = spawnSync(path, ['--', path, 'tend-shim'], { encoding: 'utf8', timeout: 10_000, env: {} });
  if (r.status === 125 && /^tend-shim: missing --/.test(r.stderr ?? '')) return null;
  return `smoke test failed (status ${r.status}, signal ${r.signal}, stderr ${JSON.stringify(firstLines(r.stderr ?? '', 1))})`;
}

function smokeTestNsinit(path) {
  const r = spawnSync(path, [], { encoding: 'utf8', timeout: 10_000, env: {} });
  if (r.status === 125 && /^tend-nsinit: missing --/.test(r.stderr ?? '')) return null;
  return `smoke test failed (status ${r.status}, signal ${r.signal})`;
}

// The manager checks this line before relying on the reaper: a binary left
// from another protocol version must not be fed lines it misreads.
function smokeTestReaper(path) {
  const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000, env: {}, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status === 0 && r.stdout === 'tend-reaper 1\n') return null;
  return `smoke test failed (status ${r.status}, signal ${r.signal}, stdout ${JSON.stringify(firstLines(r.stdout ?? '', 1))})`;
}

function brief(text) {
  const first = String(text).split(/; |\n/)[0] ?? '';
  return first.length > 160 ? `${first.slice(0, 157)}...` : first;
}

function install(tmp, out) {
  renameSync(tmp, out);
}

function buildShim(cc) {
  const attempts = [];
  if (process.arch === 'x64' || process.arch === 'arm64') {
    attempts.push({ variant: 'nolibc', flags: NOLIBC_FLAGS });
  }
  attempts.push({ variant: 'libc-static', flags: ['-Os', '-static', '-s', '-DTEND_SHIM_LIBC'] });
  attempts.push({ variant: 'libc', flags: ['-Os', '-s', '-DTEND_SHIM_LIBC'] });
  const errors = [];
  for (const { variant, flags } of attempts) {
    const c = compile(cc, flags, shimSrc, shimBin);
    if (!c.ok) {
      errors.push(`${variant}: ${c.error}`);
      continue;
    }
    const smoke = smokeTestShim(c.tmp);
    if (smoke) {
      rmSync(c.tmp, { force: true });
      errors.push(`${variant}: ${smoke}`);
      continue;
    }
    install(c.tmp, shimBin);
    return { built: true, variant, error: null };
  }
  return { built: false, variant: null, error: errors.join('; ') };
}

function buildNsinit(cc) {
  const c = compile(cc, ['-O2', '-s'], nsinitSrc, nsinitBin);
  if (!c.ok) return { built: false, error: c.error };
  const smoke = smokeTestNsinit(c.tmp);
  if (smoke) {
    rmSync(c.tmp, { force: true });
    return { built: false, error: smoke };
  }
  install(c.tmp, nsinitBin);
  return { built: true, error: null };
}

function buildReaper(cc) {
  const c = compile(cc, ['-O2', '-s'], reaperSrc, reaperBin);
  if (!c.ok) return { built: false, error: c.error };
  const smoke = smokeTestReaper(c.tmp);
  if (smoke) {
    rmSync(c.tmp, { force: true });
    return { built: false, error: smoke };
  }
  install(c.tmp, reaperBin);
  return { built: true, error: null };
}

function main() {
  const base = { compiler: null, arch: process.arch, builtAt: new Date().toISOString() };
  if (process.platform !== 'linux') {
    log(`native helpers are Linux-only; skipped on ${process.platform}`);
    writeStatus({
      shim: { built: false, variant: null, error: `not built: Linux-only (platform ${process.platform})` },
      nsinit: { built: false, error: `not built: Linux-only (platform ${process.platform})` },
      reaper: { built: false, error: `not built: Linux-only (platform ${process.platform})` },
      ...base,
    });
    return;
  }
  if (process.env.TEND_REBUILD_NATIVE !== '1' && upToDate()) return;

  mkdirSync(binDir, { recursive: true });
  const cc = findCompiler();
  if (!cc) {
    const error = 'no C compiler found ($CC, cc, gcc, clang)';
    // Stale helpers from an earlier build would not match the recorded status.
    rmSync(shimBin, { force: true });
    rmSync(nsinitBin, { force: true });
    rmSync(reaperBin, { force: true });
    writeStatus({ shim: { built: false, variant: null, error }, nsinit: { built: false, error }, reaper: { built: false, error }, ...base });
    log(`warning: native helpers not built: ${error}; tend falls back to weaker containment`);
    return;
  }
  const shim = buildShim(cc);
  const nsinit = buildNsinit(cc);
  const reaper = buildReaper(cc);
  if (!shim.built) rmSync(shimBin, { force: true });
  if (!nsinit.built) rmSync(nsinitBin, { force: true });
  if (!reaper.built) rmSync(reaperBin, { force: true });
  writeStatus({ shim, nsinit, reaper, ...base, compiler: cc.join(' ') });
  if (!shim.built) log(`warning: tend-shim not built: ${brief(shim.error)} (details: ${statusPath})`);
  if (!nsinit.built) log(`warning: tend-nsinit not built: ${brief(nsinit.error)} (details: ${statusPath})`);
  if (!reaper.built) log(`warning: tend-reaper not built: ${brief(reaper.error)} (details: ${statusPath})`);
}

try {
  main();
} catch (err) {
  log(`warning: native helpers not built: ${err instanceof Error ? err.message : String(err)}`);
  writeStatus({
    shim: { built: false, variant: null, error: String(err) },
    nsinit: { built: false, error: String(err) },
    reaper: { built: false, error: String(err) },
    compiler: null,
    arch: process.arch,
    builtAt: new Date().toISOString(),
  });
}
process.exit(0);
