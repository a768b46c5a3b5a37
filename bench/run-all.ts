/**
 * Runs every benchmark in sequence, each in its own node process (so one's
 * module state, caches and exit hooks cannot touch the next), after printing
 * what the numbers depend on. Each benchmark prints Markdown tables with
 * ratios against a baseline measured in the same run.
 *
 *   npm run bench     (or: node dist/bench/run-all.js [start-overhead|stop-tree|exec-wall|manager-kill|reaper-cost|recovery|supervisor|ps-scale ...])
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detect } from '../src/index.js';
import { MARKER, cgroup2Mount, childCgroups, fmt, isAlive, isMain, markerOf, procPids, readStat, table } from './lib.js';

const benches = [
  { name: 'start-overhead', what: 'start + exit of /bin/true, raw spawn vs tend per strategy' },
  { name: 'stop-tree', what: 'stop a 100-process tree, tend vs raw cgroup.kill and kill(-pgid)' },
  { name: 'exec-wall', what: 'CLI wall time vs node -e 0' },
  { name: 'manager-kill', what: 'manager SIGKILL → every member gone, per strategy, with and without the reaper' },
  { name: 'reaper-cost', what: 'tend-reaper memory (0/100/1000 registrations), start time, and its cost to ProcessManager.create()' },
  { name: 'recovery', what: 'recovery of 100 stale records: ProcessManager.create() and tend recover --json vs an empty state dir' },
  { name: 'supervisor', what: 'daemon + CLI vs PM2: ps --json / pm2 jlist at 1/100/1000 services, daemon RSS, CLI start → running' },
  { name: 'ps-scale', what: 'tend ps at 100/1000/10,000 services: all listed, daemon cost per service, daemon RSS over 50 ps, CLI wall vs node -e 0' },
] as const;

function machineInfo(): string {
  const caps = detect();
  const cpu = cpus()[0]?.model ?? 'unknown';
  const load = loadavg().map((x) => fmt(x)).join(' ');
  const rows = [
    ['node', process.version],
    ['nproc', String(availableParallelism())],
    ['cpu', cpu],
    ['kernel', release()],
    ['memory', `${fmt(totalmem() / 2 ** 30, 1)} GiB`],
    ['NODE_EXTRA_CA_CERTS', process.env.NODE_EXTRA_CA_CERTS === undefined ? 'unset' : 'set (PEERS.md: adds ~80 ms to every node start)'],
    ['load average (1/5/15 min)', load],
    ['cgroup2 mount', cgroup2Mount() ?? 'none'],
    ['tend auto strategy', caps.best ?? 'none'],
    ['tend strategies available', (['cgroup', 'pidns', 'pgroup'] as const).map((s) => `${s} ${caps.strategies[s].available ? 'yes' : 'no'}`).join(', ')],
    ['cgroup.kill', caps.cgroup ? (caps.cgroup.cgroupKill ? 'yes' : 'no (freeze + kill each)') : '—'],
    ['parent-death signal', caps.parentDeathSignal.available ? `yes, via ${caps.parentDeathSignal.via}` : 'no'],
  ];
  return ['## Machine', '', table(['', ''], rows)].join('\n');
}

/** Machine-wide traces of the benchmarks: raw trees they marked, and their cgroup directories. */
function finalCheck(): string {
  const raw = procPids().filter((pid) => markerOf(pid)?.startsWith('bench-raw-') && isAlive(readStat(pid)));
  const mount = cgroup2Mount();
  const dirs = mount ? childCgroups(mount).filter((d) => d.startsWith('tend-bench-')) : [];
  return `Final check: raw benchmark trees alive (${MARKER}=bench-raw-*): ${raw.length ? raw.join(' ') : 'none'}; benchmark cgroups (tend-bench-*): ${dirs.length ? dirs.join(' ') : 'none'}`;
}

export function main(argv: string[]): number {
  const selected = argv.length ? benches.filter((b) => argv.includes(b.name)) : [...benches];
  const dir = fileURLToPath(new URL('.', import.meta.url));
  process.stdout.write(`# tend benchmarks\n\n${machineInfo()}\n\n`);
  let failed = 0;
  for (const bench of selected) {
    process.stdout.write(`## ${bench.name}: ${bench.what}\n\nload average before: ${loadavg().map((x) => fmt(x)).join(' ')}\n\n`);
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [join(dir, `${bench.name}.js`)], { stdio: 'inherit' });
    const secs = (Date.now() - t0) / 1000;
    if (r.status !== 0) failed++;
    process.stdout.write(`\n(${bench.name}: ${fmt(secs, 1)} s, exit ${r.status ?? r.signal})\n\n`);
  }
  process.stdout.write(`${finalCheck()}\n`);
  return failed ? 1 : 0;
}

if (isMain(import.meta.url)) process.exitCode = main(process.argv.slice(2));
