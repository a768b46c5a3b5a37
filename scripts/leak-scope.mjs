// Which surviving tend processes a test suite is answerable for. The leak
// check in run-tests.mjs fails the suite for the processes it started and
// outlived it, and must ignore those of anyone else on the machine: a
// developer's own `tend up -d`, a daemon in another terminal, another
// checkout's suite running at the same time.
//
// A suite's scope is a root directory (TMPDIR and TEND_HOME of the suite lie
// under it) and, where cgroup v2 is writable, a cgroup the suite's process
// joins before it execs. Three rules, any one of which makes a survivor the
// suite's:
//  1. cgroup: it sits in the suite's cgroup or below it. Every descendant of
//     the suite starts there, and tend's cgroup strategy makes its tree
//     cgroups under the starting process's own cgroup (detect.ts:
//     <own>/tend/<handle>), so they stay in the subtree too; so do the
//     test-made parents (<own>/tend-test-…, <own>/tend/spec-test-…). This
//     alone sees leaks of managers with `stateDir: false`, which write no
//     record, and processes whose environment was cleared.
//  2. home: its TEND_HOME, working directory or command line lies under the
//     root (a daemon is started with TEND_HOME=<its state dir>; tests make
//     their state dirs with mkdtemp(tmpdir())).
//  3. handle: its TEND_ID is a handle that a record or a lifecycle.jsonl
//     under the root names (read before the root is deleted).
// Without a cgroup (not root, no delegated subtree, not Linux) only 2 and 3
// apply, and they cannot see a marked process of a manager with
// `stateDir: false` whose spec gave it an environment without TEND_HOME (no
// record, no log line, nothing of the root in its environment), nor a
// descendant that cleared its environment. Then the suite's leaks of that kind
// go unreported; a foreign process is still never counted.
import { accessSync, constants, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The marker variable tend puts in every managed process's environment. */
const MARKER = 'TEND_ID=';

/** A daemon renames itself (process.title) to `tend daemon`; before that its command line is the bin's. */
export function isDaemonCommand(cmdline) {
  return /(tend\.js daemon run|^tend daemon)$/.test(cmdline);
}

/** Parses an environ block (NUL-separated NAME=VALUE); the first of duplicate names wins, as getenv does. */
function parseEnviron(block) {
  const env = new Map();
  for (const entry of block.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0 && !env.has(entry.slice(0, eq))) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return env;
}

function readOr(path, fallback) {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return fallback; // exited while we looked, or not ours to read
  }
}

/** The cgroup v2 path of a process, relative to the mount ("/" for the root); undefined without cgroup v2. */
function cgroupOf(pid) {
  const line = readOr(`/proc/${pid}/cgroup`, '')
    .split('\n')
    .find((l) => l.startsWith('0::'));
  return line === undefined ? undefined : line.slice(3) || '/';
}

/**
 * Every live process that the leak check looks at: those carrying TEND_ID,
 * and tend daemons (which carry no marker). Zombies have no code left to run
 * and are skipped.
 */
export function scanCandidates({ exclude = [process.pid] } = {}) {
  const found = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || exclude.includes(Number(name))) continue;
    const environ = readOr(`/proc/${name}/environ`, undefined);
    if (environ === undefined) continue;
    const cmdline = readOr(`/proc/${name}/cmdline`, '').replaceAll('\0', ' ').trim();
    const daemon = isDaemonCommand(cmdline);
    if (!daemon && !environ.split('\0').some((v) => v.startsWith(MARKER))) continue;
    const stat = readOr(`/proc/${name}/stat`, '');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    if (state === undefined || state === '' || state === 'Z' || state === 'X') continue;
    let cwd = '';
    try {
      cwd = readlinkSync(`/proc/${name}/cwd`);
    } catch {
      /* exited while we looked */
    }
    found.push({ pid: Number(name), cmdline, daemon, env: parseEnviron(environ), cwd, cgroup: cgroupOf(name) });
  }
  return found;
}

const isUnder = (path, dir) => dir === '/' || path === dir || path.startsWith(`${dir}/`);

/**
 * Why a candidate is the suite's (a short reason), or undefined when it is
 * someone else's. `scope`: { root, cgroup (relative to the mount, or
 * undefined), handles (a Set of TEND_IDs the suite's state named) }.
 */
export function classifyCandidate(candidate, scope) {
  if (scope.cgroup !== undefined && candidate.cgroup !== undefined && isUnder(candidate.cgroup, scope.cgroup)) return 'in the suite cgroup';
  const home = candidate.env.get('TEND_HOME');
  if (home !== undefined && isUnder(home, scope.root)) return 'TEND_HOME under the suite root';
  if (candidate.cwd !== '' && isUnder(candidate.cwd, scope.root)) return 'working directory under the suite root';
  if (candidate.cmdline.includes(`${scope.root}/`)) return 'command line names the suite root';
  const id = candidate.env.get('TEND_ID');
  if (id !== undefined && scope.handles.has(id)) return 'handle recorded under the suite root';
  return undefined;
}

/** The candidates that are the suite's, each with the reason. */
export function suiteSurvivors(scope, candidates = scanCandidates()) {
  return candidates.flatMap((c) => {
    const reason = classifyCandidate(c, scope);
    return reason === undefined ? [] : [{ ...c, reason }];
  });
}

/**
 * Every handle named under `root`: record files (<state>/records/<handle>.json,
 * a daemon's projects included, wherever they nest) and lifecycle logs
 * (a manager logs `register` before the child runs, and the log outlives
 * the record a clean stop removes).
 */
export function readSuiteHandles(root) {
  const handles = new Set();
  const walk = (dir) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // removed by a test as we walked, or not ours to read
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.json') && dir.endsWith('/records')) handles.add(entry.name.slice(0, -'.json'.length));
      else if (/^lifecycle\.jsonl(\.\d+)?$/.test(entry.name)) for (const handle of handlesInLog(path)) handles.add(handle);
    }
  };
  walk(root);
  return handles;
}

function handlesInLog(path) {
  const handles = [];
  for (const line of readOr(path, '').split('\n')) {
    try {
      const entry = JSON.parse(line);
      if (typeof entry?.handle === 'string') handles.push(entry.handle);
    } catch {
      /* a torn or foreign line: it names no handle */
    }
  }
  return handles;
}

/** The cgroup2 mount point and this process's cgroup relative to it, or undefined. */
function locateCgroup2() {
  const mountLine = readOr('/proc/self/mountinfo', '')
    .split('\n')
    .find((l) => l.includes(' - cgroup2 '));
  const own = cgroupOf('self');
  if (mountLine === undefined || own === undefined) return undefined;
  const mount = mountLine.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, oct) => String.fromCharCode(parseInt(oct, 8)));
  return mount ? { mount, own } : undefined;
}

/**
 * Makes a cgroup for the suite below this process's own one (so moving into
 * it needs no more rights than tend's own cgroup strategy does). Returns
 * { dir, path } (absolute directory, path relative to the mount), or
 * { reason } when cgroup v2 is not writable here.
 */
export function createSuiteCgroup(name) {
  const site = locateCgroup2();
  if (!site) return { reason: 'no cgroup v2 (see /proc/self/mountinfo)' };
  const path = join(site.own, name);
  const dir = join(site.mount, path);
  try {
    mkdirSync(dir);
    accessSync(join(dir, 'cgroup.procs'), constants.W_OK);
    accessSync(join(site.mount, site.own, 'cgroup.procs'), constants.W_OK);
  } catch (error) {
    if (existsSync(dir)) removeCgroupTree(dir);
    return { reason: `cannot make ${dir} and move into it: ${error.code ?? error.message}` };
  }
  return { dir, path };
}

/**
 * The argv that runs `argv` inside the cgroup `dir`: a shell writes its own
 * pid into cgroup.procs, then execs, so the suite's first instruction already
 * runs in the cgroup and no child can be born outside it (moving a process
 * after spawn would race its first fork).
 */
export function joinCgroupArgv(dir, argv) {
  const script = 'echo $$ > "$0" || { echo "leak check: cannot join the cgroup $0" >&2; exit 97; }; exec "$@"';
  return ['/bin/sh', '-c', script, join(dir, 'cgroup.procs'), ...argv];
}

/** Live pids in a cgroup and below it. */
export function cgroupMembers(dir) {
  const pids = [];
  for (const line of readOr(join(dir, 'cgroup.procs'), '').split('\n')) if (line) pids.push(Number(line));
  let entries = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    /* gone */
  }
  for (const entry of entries) if (entry.isDirectory()) pids.push(...cgroupMembers(join(dir, entry.name)));
  return pids;
}

/**
 * SIGKILLs whatever is left in the suite's cgroup (all of it descends from
 * the suite: nothing else can enter a cgroup nobody else knows of), waits
 * until it is empty, and removes it with its sub-cgroups. Returns the pids
 * it killed. Throws when the cgroup is still populated at the deadline.
 */
export async function removeSuiteCgroup(dir, timeoutMs = 10_000) {
  const killed = new Set();
  const deadline = Date.now() + timeoutMs;
  for (let interval = 1; ; interval = Math.min(interval * 2, 50)) {
    const pids = cgroupMembers(dir);
    // An exiting process leaves cgroup.procs before it leaves the cgroup:
    // until cgroup.events says "populated 0", rmdir fails with EBUSY.
    if (pids.length === 0 && !isPopulated(dir) && maybeRemoveCgroupTree(dir)) break;
    if (Date.now() > deadline) throw new Error(`leak check: cannot remove ${dir}: it still holds ${pids.join(', ') || 'exiting processes'} after SIGKILL`);
    if (pids.length > 0 && existsSync(join(dir, 'cgroup.kill'))) writeFileSync(join(dir, 'cgroup.kill'), '1');
    for (const pid of pids) {
      killed.add(pid);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    // No event tells a script that a cgroup emptied without a watcher; the
    // backoff bounds this wait, and it runs only when something was left.
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
  return [...killed];
}

function isPopulated(dir) {
  return /^populated 1$/m.test(readOr(join(dir, 'cgroup.events'), ''));
}

/** Removes the cgroup and its sub-cgroups; false while one of them is still busy. */
function maybeRemoveCgroupTree(dir) {
  try {
    removeCgroupTree(dir);
    return true;
  } catch (error) {
    if (error.code === 'EBUSY') return false;
    throw error;
  }
}

function removeCgroupTree(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeCgroupTree(join(dir, entry.name));
  rmdirSync(dir);
}
