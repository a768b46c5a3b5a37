/**
 * Wall time of the CLI: `tend exec -- /bin/true` (auto and each forced
 * strategy) against `node -e 0`, interleaved (order rotated every round),
 * spawnSync wall time. `tend --help` is the "CLI load only" row and
 * `tend exec --help` adds the exec command's modules (the manager and the
 * platform layer) without running anything, so start-up cost separates from
 * the exec work. When the build also bundles the CLI (dist/src/bin/tend.js),
 * that file is measured too. When NODE_EXTRA_CA_CERTS is set (it costs every node start
 * tens of ms here), every node row is measured a second time without it.
 *
 *   node dist/bench/exec-wall.js     (BENCH_RUNS to tune)
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { detect, type Capabilities } from '../src/index.js';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { childCgroups, fmt, isMain, markedProcesses, median, min, repoRoot, rotate, table } from './lib.js';

interface Command {
  readonly key: string;
  readonly label: string;
  readonly file: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** Key of the baseline row for the ratio column. */
  readonly baseline: string;
  readonly target: number | undefined;
}

export function run(options: { runs?: number } = {}): string {
  const runs = options.runs ?? Number(process.env.BENCH_RUNS ?? 30);
  const cli = join(repoRoot, 'dist/src/cli/main.js');
  // The package's bin, when the build bundles the CLI into one file.
  const bundledPath = join(repoRoot, 'dist/src/bin/tend.js');
  const bundled = existsSync(bundledPath) ? bundledPath : undefined;
  const caps = detect();
  const tmp = mkdtempSync(join(tmpdir(), 'tend-bench-'));
  const emptyModule = join(tmp, 'empty.mjs');
  writeFileSync(emptyModule, '');
  try {
    return measure(runs, cli, bundled, emptyModule, caps);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function measure(runs: number, cli: string, bundled: string | undefined, emptyModule: string, caps: Capabilities): string {
  const node = process.execPath;
  const extraCa = process.env.NODE_EXTRA_CA_CERTS;
  const variants: { suffix: string; note: string; env: NodeJS.ProcessEnv }[] = [{ suffix: '', note: '', env: { ...process.env } }];
  if (extraCa !== undefined) {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    variants.push({ suffix: '-noca', note: ', NODE_EXTRA_CA_CERTS unset', env });
  }

  const commands: Command[] = [{ key: 'true', label: '/bin/true (spawnSync floor)', file: '/bin/true', args: [], env: process.env, baseline: 'node', target: undefined }];
  for (const v of variants) {
    const base = `node${v.suffix}`;
    const add = (key: string, label: string, args: string[], target: number | undefined): void => {
      commands.push({ key: `${key}${v.suffix}`, label: `${label}${v.note}`, file: node, args, env: v.env, baseline: base, target });
    };
    add('node', '`node -e 0`', ['-e', '0'], undefined);
    add('empty-esm', '`node empty.mjs` (ES module entry, no code)', [emptyModule], undefined);
    add('help', '`tend --help` (CLI load only)', [cli, '--help'], undefined);
    add('exec-help', '`tend exec --help` (CLI + exec modules, no exec)', [cli, 'exec', '--help'], undefined);
    add('exec-auto', `\`tend exec -- /bin/true\` (auto → ${caps.best ?? 'none'})`, [cli, 'exec', '--', '/bin/true'], 1.5);
    for (const s of ['cgroup', 'pidns', 'pgroup'] as const) {
      if (caps.strategies[s].available) add(`exec-${s}`, `\`tend exec --strategy ${s} -- /bin/true\``, [cli, 'exec', '--strategy', s, '--', '/bin/true'], 1.5);
    }
    if (bundled) {
      add('bundle-help', '`tend --help`, bundled bin (CLI load only)', [bundled, '--help'], undefined);
      add('bundle-exec-auto', '`tend exec -- /bin/true`, bundled bin (auto)', [bundled, 'exec', '--', '/bin/true'], 1.5);
    }
  }

  // The CLI's handles are not ours to track: compare before and after instead.
  const parent = caps.cgroup?.parent;
  const cgroupsBefore = new Set(parent ? childCgroups(parent) : []);
  const markedBefore = new Set(markedProcesses().map((p) => `${p.pid}:${p.startTime}`));

  const times: Record<string, number[]> = Object.fromEntries(commands.map((c) => [c.key, [] as number[]]));
  const failures: Record<string, number> = {};
  const once = (c: Command): number => {
    const t0 = performance.now();
    const r = spawnSync(c.file, c.args, { stdio: 'ignore', env: c.env });
    const ms = performance.now() - t0;
    if (r.status !== 0) failures[c.key] = (failures[c.key] ?? 0) + 1;
    return ms;
  };
  for (const c of commands) once(c); // warm the page cache
  for (let r = 0; r < runs; r++) for (const c of rotate(commands, r)) times[c.key]?.push(once(c));

  const rows = commands.map((c) => {
    const med = median(times[c.key] ?? []);
    const base = median(times[c.baseline] ?? []);
    const ratio = med / base;
    const target = c.target === undefined ? '—' : `≤${c.target}×${ratio <= c.target ? ' (within)' : ' (over)'}`;
    return [c.label, fmt(med), fmt(min(times[c.key] ?? [])), fmt(ratio, 3), c.key === c.baseline || c.key === 'true' ? '—' : fmt(med - base), target];
  });
  const out: string[] = [];
  out.push(
    `### CLI wall time: ${runs} interleaved runs each (spawnSync wall time, order rotated), node ${process.version}, NODE_EXTRA_CA_CERTS ${extraCa === undefined ? 'unset' : 'set'}`,
    '',
    table(['command', 'median ms', 'min ms', 'ratio to `node -e 0` (same env)', 'ms above `node -e 0`', 'target'], rows),
    '',
  );
  const failed = Object.entries(failures);
  out.push(failed.length ? `non-zero exits: ${failed.map(([k, n]) => `${k} ${n}`).join(', ')}` : 'every run exited 0');
  out.push(leftoverLine(parent, cgroupsBefore, markedBefore));
  return out.join('\n');
}

/** Marked processes running /bin/true that appeared during the runs, and tend cgroups created since that are still there. */
function leftoverLine(parent: string | undefined, cgroupsBefore: Set<string>, markedBefore: Set<string>): string {
  const procs = markedProcesses().filter((p) => !markedBefore.has(`${p.pid}:${p.startTime}`) && cmdline(p.pid).includes('/bin/true'));
  const dirs = parent ? childCgroups(parent).filter((d) => !cgroupsBefore.has(d)) : [];
  const p = procs.length ? procs.map((x) => `${x.pid}(${x.comm})`).join(' ') : 'none';
  const d = dirs.length ? `${dirs.length} (${dirs.join(' ')}; other tend users on this machine may own some)` : 'none';
  return `Left behind by this benchmark: processes running /bin/true with TEND_ID ${p}; new cgroups under ${parent ?? '(no cgroup parent)'}: ${d}`;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ');
  } catch {
    return '';
  }
}

if (isMain(import.meta.url)) {
  try {
    process.stdout.write(`${run()}\n`);
  } catch (error) {
    process.stderr.write(`exec-wall: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  }
}
