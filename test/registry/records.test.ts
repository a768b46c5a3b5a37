// The state directory and what recovery does with it: identity checks (pid
// reuse, live managers, earlier boots), corrupt records, an unsafe directory,
// many tend processes writing and recovering at once, and the lifecycle log.
// Records are read from disk and processes from /proc, never through tend's
// own answers alone. Every test has its own state directory; every process
// started here carries TEND_TEST_RUN=<RUN>... (hand-made trees also
// TEND_ID=<PREFIX>...) and `after` SIGKILLs whatever a failing test left.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ProcessManager, TendError, resolveStateDir } from '../../src/index.js';
import { systemProcessTable } from '../../src/platform/proc-table.js';
import { LifecycleLog } from '../../src/registry/lifecycle-log.js';
import { RecordStore, validateRecord, type ProcessRecord } from '../../src/registry/records.js';
import { recoverOrphans, type RecoveryReport } from '../../src/registry/recover.js';
import { ensureStateDir } from '../../src/registry/state-dir.js';
import { rootSkipReason } from '../helpers/capabilities.js';
import { RUN_VARIABLE, cleanupByMarker } from '../helpers/cleanup.js';
import { NODE, PATH, fixturePath } from '../helpers/fixtures.js';
import { ManagerHost, killLeftoverHosts } from '../helpers/manager-host.js';
import { describeProcesses, findMarked, isAlive, survivorsOf } from '../helpers/proc-scan.js';
import {
  SLEEP,
  deadIdentity,
  fabricateRecord,
  lifecycleLines,
  makeStateDir,
  ownIdentity,
  recordDirEntries,
  recordFiles,
  recordPath,
  removeStateDirs,
  startMarkedTree,
  startStranger,
} from '../helpers/state.js';
import { outputOf, waitFor, waitForExit, waitForLine, withDeadline } from '../helpers/wait.js';

const RUN = `records-${randomBytes(6).toString('hex')}`;
/** Handles of hand-made trees start with this (a valid handle: letters and digits). */
const PREFIX = `rec${randomBytes(5).toString('hex')}`;
const table = systemProcessTable();
const children = new Set<ChildProcess>();
let serial = 0;

function newHandle(label: string): string {
  serial += 1;
  return `${PREFIX}${label}${serial}`;
}

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await killLeftoverHosts();
  await cleanupByMarker({ prefix: PREFIX });
  await cleanupByMarker({ variable: RUN_VARIABLE, prefix: RUN });
  removeStateDirs();
});

/** A state directory as tend prepares it, with a record store and a log. */
function stateDirWithStore(label: string): { stateDir: string; store: RecordStore } {
  const stateDir = ensureStateDir(makeStateDir(label));
  return { stateDir, store: new RecordStore(stateDir) };
}

function recover(stateDir: string): Promise<RecoveryReport> {
  return recoverOrphans({ store: new RecordStore(stateDir), table, log: new LifecycleLog(stateDir) });
}

function writeRecord(stateDir: string, record: ProcessRecord): void {
  writeFileSync(recordPath(stateDir, record.handle), `${JSON.stringify(record)}\n`, { mode: 0o600 });
}

function assertTreeAlive(processes: readonly { pid: number; startTime: number }[], when: string): void {
  const dead = processes.filter((p) => !isAlive(p.pid, p.startTime));
  assert.equal(dead.length, 0, `${when}: pids ${dead.map((p) => p.pid).join(', ')} were killed`);
}

describe('recovery checks identities before it kills', () => {
  // The real pid-reuse case: the recorded leader died and its pid (and so its
  // group number) went to a stranger, which necessarily started later.
  for (const [when, offset] of [
    ['started after the recorded start time (the real pid-reuse case)', -50],
    ['started before the recorded start time', 50],
  ] as const) {
    test(`a stale record whose pid and pgid now belong to an unrelated process that ${when}: the process lives, the record goes`, async () => {
      const { stateDir } = stateDirWithStore('reuse');
      const stranger = await startStranger(RUN);
      assert.equal(stranger.pgid, stranger.pid, 'the stranger leads its own process group, as a tend leader would');
      const handle = newHandle('reuse');
      const startTime = stranger.startTime + offset;
      writeRecord(stateDir, fabricateRecord({ handle, manager: await deadIdentity(), pid: stranger.pid, startTime, pgid: stranger.pgid, notBefore: startTime }));

      const report = await recover(stateDir);

      assert.ok(isAlive(stranger.pid, stranger.startTime), `recovery killed the unrelated process ${stranger.pid}, which only inherited the recorded pid and pgid: ${JSON.stringify(report)}`);
      assert.deepEqual(report.trees.map((t) => ({ handle: t.handle, pids: t.pids })), [{ handle, pids: [] }], 'the report names the record and no member');
      assert.deepEqual(recordDirEntries(stateDir), [], 'the stale record is removed');
    });
  }

  test('control: the same kind of record, pointing at a live tree carrying its marker, is killed', async () => {
    const { stateDir } = stateDirWithStore('reuse-control');
    const handle = newHandle('control');
    const tree = await startMarkedTree(handle, RUN);
    const { leader } = tree;
    writeRecord(stateDir, fabricateRecord({ handle, manager: await deadIdentity(), pid: leader.pid, startTime: leader.startTime, pgid: leader.pgid, notBefore: leader.startTime }));

    const report = await recover(stateDir);

    const left = survivorsOf(handle, tree.processes);
    assert.equal(left.length, 0, `recovery left members of a stale tree alive:\n${describeProcesses(left)}`);
    assert.deepEqual([...(report.trees[0]?.pids ?? [])].sort((a, b) => a - b), tree.processes.map((p) => p.pid).sort((a, b) => a - b), 'the report lists every member');
    assert.deepEqual(recordDirEntries(stateDir), []);
  });

  test('a record whose manager is alive (this process) is left alone; once its manager is dead it is cleaned', async () => {
    const { stateDir } = stateDirWithStore('live');
    const handle = newHandle('live');
    const tree = await startMarkedTree(handle, RUN);
    const { leader } = tree;
    const record = fabricateRecord({ handle, manager: ownIdentity(), pid: leader.pid, startTime: leader.startTime, pgid: leader.pgid, notBefore: leader.startTime });
    writeRecord(stateDir, record);

    const report = await recover(stateDir);
    assert.equal(report.live, 1, `the record of a live manager counts as live: ${JSON.stringify(report)}`);
    assert.deepEqual(report.trees, [], 'nothing of a live manager is recovered');
    assertTreeAlive(tree.processes, 'the tree of a live manager');
    assert.deepEqual(recordFiles(stateDir), [`${handle}.json`], 'the record of a live manager stays');

    // The same record, its manager now a dead process: the contrast that shows the check above is what kept the tree.
    writeRecord(stateDir, { ...record, manager: await deadIdentity() });
    const second = await recover(stateDir);
    assert.equal(second.live, 0);
    assert.deepEqual(second.trees.map((t) => t.handle), [handle]);
    const left = survivorsOf(handle, tree.processes);
    assert.equal(left.length, 0, `recovery left members alive:\n${describeProcesses(left)}`);
    assert.deepEqual(recordDirEntries(stateDir), []);
  });

  test('a record from another boot is removed without killing anything, even a live process carrying its marker', async () => {
    const { stateDir } = stateDirWithStore('boot');
    const handle = newHandle('boot');
    const tree = await startMarkedTree(handle, RUN);
    const { leader } = tree;
    const otherBoot = '00000000-0000-4000-8000-000000000000';
    const manager = { ...(await deadIdentity()), bootId: otherBoot };
    writeRecord(stateDir, fabricateRecord({ handle, manager, bootId: otherBoot, pid: leader.pid, startTime: leader.startTime, pgid: leader.pgid, notBefore: 0 }));

    const report = await recover(stateDir);

    assertTreeAlive(tree.processes, 'a record of an earlier boot names processes that cannot be alive, so whatever carries these numbers now is not its tree');
    assert.equal(report.trees.length, 1);
    assert.equal(report.trees[0]?.handle, handle);
    assert.deepEqual(report.trees[0]?.pids, []);
    assert.match(report.trees[0]?.reason ?? '', /earlier boot/);
    assert.deepEqual(recordDirEntries(stateDir), [], 'the record of an earlier boot is removed');
  });
});

describe('corrupt records', () => {
  test('each is moved aside with its reason and logged, and the valid records are still processed', async () => {
    const { stateDir } = stateDirWithStore('corrupt');
    const dead = await deadIdentity();
    const staleHandle = newHandle('stale');
    const tree = await startMarkedTree(staleHandle, RUN);
    const { leader } = tree;
    const stale = fabricateRecord({ handle: staleHandle, manager: dead, pid: leader.pid, startTime: leader.startTime, pgid: leader.pgid, notBefore: leader.startTime });
    writeRecord(stateDir, stale);
    const liveHandle = newHandle('live');
    writeRecord(stateDir, fabricateRecord({ handle: liveHandle, manager: ownIdentity() }));

    const valid = JSON.stringify(fabricateRecord({ handle: newHandle('x'), manager: dead }));
    const corrupt: Record<string, { text: string; reason: RegExp }> = {
      'invalid.json': { text: 'this is not JSON at all', reason: /not valid JSON/ },
      'truncated.json': { text: valid.slice(0, Math.floor(valid.length / 2)), reason: /not valid JSON/ },
      'empty.json': { text: '', reason: /not valid JSON/ },
      'null.json': { text: 'null', reason: /not a JSON object/ },
      'wrong-shape.json': { text: JSON.stringify({ ...JSON.parse(valid), pid: 'twelve' }), reason: /bad pid/ },
      'no-schema.json': { text: JSON.stringify({ hello: 'world' }), reason: /unknown schema/ },
      'future-schema.json': { text: JSON.stringify({ ...JSON.parse(valid), schema: 2 }), reason: /unknown schema 2/ },
    };
    for (const [name, { text }] of Object.entries(corrupt)) writeFileSync(join(stateDir, 'records', name), text, { mode: 0o600 });

    const report = await recover(stateDir);

    assert.equal(report.corrupt.length, Object.keys(corrupt).length, `every corrupt record is reported: ${JSON.stringify(report.corrupt)}`);
    for (const [name, { text, reason }] of Object.entries(corrupt)) {
      const entry = report.corrupt.find((c) => c.file === join(stateDir, 'records', name));
      assert.ok(entry, `${name} is reported as corrupt`);
      assert.match(entry.reason, reason, `the reason given for ${name}`);
      assert.ok(entry.movedTo.startsWith(join(stateDir, 'records', 'corrupt') + '/'), `${name} is moved into records/corrupt, not to ${entry.movedTo}`);
      assert.equal(readFileSync(entry.movedTo, 'utf8'), text, `${name} is kept as it was, not dropped`);
      assert.equal(existsSync(entry.file), false, `${name} is no longer among the records`);
    }
    assert.equal(readdirSync(join(stateDir, 'records', 'corrupt')).length, Object.keys(corrupt).length);

    assert.deepEqual(report.trees.map((t) => t.handle), [staleHandle], 'the valid stale record is still recovered');
    const left = survivorsOf(staleHandle, tree.processes);
    assert.equal(left.length, 0, `the stale tree beside the corrupt records survived:\n${describeProcesses(left)}`);
    assert.equal(report.live, 1, 'the valid live record is still seen');
    assert.deepEqual(recordFiles(stateDir), [`${liveHandle}.json`]);

    const logged = lifecycleLines(stateDir).filter((l) => l.event === 'corrupt-record');
    assert.equal(logged.length, Object.keys(corrupt).length, `one corrupt-record line per file: ${JSON.stringify(logged)}`);
    for (const name of Object.keys(corrupt)) assert.ok(logged.some((l) => l.reason.includes(name)), `a corrupt-record line names ${name}`);

    const again = await recover(stateDir);
    assert.deepEqual(again.corrupt, [], 'what was moved aside is not reported again');
  });
});

describe('the state directory', () => {
  async function assertRefused(stateDir: string, reason: RegExp, fix: RegExp): Promise<void> {
    await assert.rejects(ProcessManager.create({ stateDir, handleSignals: false }), (error: unknown) => {
      assert.ok(error instanceof TendError, `a TendError, not ${String(error)}`);
      assert.equal(error.code, 'STATE_DIR_UNSAFE');
      assert.ok(error.message.includes(stateDir), `the message names the directory: ${error.message}`);
      assert.match(error.message, reason);
      assert.match(error.message, fix, 'the message says how to fix it');
      return true;
    });
  }

  test('a fresh one is created with mode 0700, records/ and managers/ too', async () => {
    const stateDir = join(makeStateDir('fresh'), 'a', 'b', 'tend');
    const manager = await ProcessManager.create({ stateDir, handleSignals: false, reaper: false });
    try {
      for (const dir of [stateDir, join(stateDir, 'records'), join(stateDir, 'managers')]) {
        const stat = statSync(dir);
        assert.ok(stat.isDirectory(), `${dir} is a directory`);
        assert.equal((stat.mode & 0o777).toString(8), '700', `${dir} has mode 0700`);
      }
    } finally {
      await manager.shutdown();
    }
  });

  test('owned by another user: refused', async (t) => {
    const skip = rootSkipReason();
    if (skip) return t.skip(`${skip}: only root can give a directory to another user`);
    const stateDir = makeStateDir('foreign');
    chownSync(stateDir, 65534, 65534);
    await assertRefused(stateDir, /owned by uid 65534/, /chown/);
    assert.equal(existsSync(join(stateDir, 'records')), false, 'nothing is written into a refused directory');
  });

  for (const [mode, who] of [
    [0o777, 'others'],
    [0o770, 'its group'],
    [0o702, 'others'],
  ] as const) {
    test(`writable by ${who} (mode ${mode.toString(8)}): refused`, async () => {
      const stateDir = makeStateDir('writable');
      chmodSync(stateDir, mode);
      await assertRefused(stateDir, new RegExp(`writable by ${who}`), /chmod 700/);
      assert.equal(existsSync(join(stateDir, 'records')), false, 'nothing is written into a refused directory');
    });
  }

  test('a file instead of a directory: refused', async () => {
    const stateDir = join(makeStateDir('file'), 'state');
    writeFileSync(stateDir, 'not a directory\n');
    await assertRefused(stateDir, /not a directory/, /Remove it|TEND_HOME/);
  });

  test('control: mode 0755 (readable, not writable, by others) is accepted', async () => {
    const stateDir = makeStateDir('readable');
    chmodSync(stateDir, 0o755);
    const manager = await ProcessManager.create({ stateDir, handleSignals: false, reaper: false });
    await manager.shutdown();
    assert.ok(existsSync(join(stateDir, 'records')));
  });

  test('resolveStateDir: TEND_HOME, else XDG_STATE_HOME/tend, else HOME/.local/state/tend', () => {
    const all = { TEND_HOME: '/t/home', XDG_STATE_HOME: '/x/state', HOME: '/h' };
    assert.equal(resolveStateDir(all), '/t/home');
    assert.equal(resolveStateDir({ ...all, TEND_HOME: undefined }), '/x/state/tend');
    assert.equal(resolveStateDir({ HOME: '/h' }), '/h/.local/state/tend');
    assert.equal(resolveStateDir({ TEND_HOME: 'relative/dir', HOME: '/h' }), resolve('relative/dir'), 'a relative TEND_HOME is made absolute');
    assert.equal(resolveStateDir({ TEND_HOME: '', XDG_STATE_HOME: '/x/state', HOME: '/h' }), '/x/state/tend', 'an empty TEND_HOME counts as unset');
    assert.equal(resolveStateDir({ XDG_STATE_HOME: '', HOME: '/h' }), '/h/.local/state/tend', 'an empty XDG_STATE_HOME counts as unset');
  });

  test("ProcessManager.create() takes TEND_HOME from its env option", async () => {
    const stateDir = makeStateDir('env');
    const manager = await ProcessManager.create({ env: { TEND_HOME: stateDir, PATH }, handleSignals: false, reaper: false });
    try {
      assert.ok(existsSync(join(stateDir, 'records')), 'records/ was created under TEND_HOME');
      assert.deepEqual(readdirSync(join(stateDir, 'managers')), [`${process.pid}.json`], 'the manager file is written under TEND_HOME');
    } finally {
      await manager.shutdown();
    }
  });
});

describe('several tend processes share one state directory', () => {
  const WRITERS = 50;

  test(`${WRITERS} managers at once, each starting a sleep: ${WRITERS} records, none lost; all removed at exit`, async () => {
    const stateDir = makeStateDir('fifty');
    const run = `${RUN}-fifty`;
    const spec = { command: SLEEP, args: ['1000'], env: { PATH, [RUN_VARIABLE]: run }, strategy: 'pgroup', stdio: 'ignore' };
    const hosts = Array.from({ length: WRITERS }, () => new ManagerHost({ spec }, stateDir, RUN));
    const started = await withDeadline(Promise.all(hosts.map((h) => h.started(60_000))), { what: `${WRITERS} hosts to start their sleep`, timeoutMs: 60_000 });
    const ids = started.map((s) => s.id);
    assert.equal(new Set(ids).size, WRITERS, 'every handle is distinct');
    assert.deepEqual(recordFiles(stateDir), ids.map((id) => `${id}.json`).sort(), 'one record per tree, none lost');

    // The record is completed with the leader's pid after spawn: wait for every update, none may be lost either.
    const leaders = new Map(ids.map((id) => [id, findMarked({ value: id }).find((p) => p.comm === 'sleep')?.pid]));
    let records: ProcessRecord[] = [];
    await waitFor(
      () => {
        records = ids.map((id) => JSON.parse(readFileSync(recordPath(stateDir, id), 'utf8')) as ProcessRecord);
        return records.every((r) => r.pid !== null);
      },
      { what: 'every record to name its leader', detail: () => records.filter((r) => r.pid === null).map((r) => r.handle).join(', ') },
    );
    hosts.forEach((host, i) => {
      const record = records[i] as ProcessRecord;
      assert.equal(validateRecord(record), undefined, `record ${record.handle} is valid`);
      assert.equal(record.handle, ids[i]);
      assert.equal(record.manager.pid, host.pid, `record ${record.handle} names its own manager`);
      assert.equal(record.pid, leaders.get(record.handle), `record ${record.handle} names its own sleep`);
    });
    assert.deepEqual(recordDirEntries(stateDir), recordFiles(stateDir), 'no temp file is left beside the records');

    for (const host of hosts) host.child.stdin.write('exit\n');
    const statuses = await Promise.all(hosts.map((h) => h.exited(30_000)));
    assert.ok(statuses.every((s) => s.code === 0), `every host exits 0: ${JSON.stringify(statuses)}`);
    assert.deepEqual(recordDirEntries(stateDir), [], 'every record is removed once its tree is stopped');
    assert.deepEqual(readdirSync(join(stateDir, 'managers')), [], 'every manager file is removed');
    const left = findMarked({ variable: RUN_VARIABLE, value: run });
    assert.equal(left.length, 0, `sleeps survived their managers' exit:\n${describeProcesses(left)}`);

    // Fifty processes appended to one log: every line is whole, one register line per tree.
    const lines = lifecycleLines(stateDir);
    for (const id of ids) assert.equal(lines.filter((l) => l.event === 'register' && l.handle === id).length, 1, `one register line for ${id}`);
  });

  test(`RecordStore.write from ${WRITERS} processes at once: ${WRITERS} records, none torn, the last write of each kept`, async () => {
    const { stateDir } = stateDirWithStore('writers');
    const prefix = newHandle('w');
    const rounds = 10;
    const padding = 16 * 1024;
    const manager = JSON.stringify(await deadIdentity());
    const writers = Array.from({ length: WRITERS }, (_, i) => {
      const child = spawn(NODE, [fixturePath('record-writer.mjs'), stateDir, prefix, String(i), String(rounds), String(padding), manager], {
        env: { PATH, [RUN_VARIABLE]: RUN },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      children.add(child);
      outputOf(child.stderr);
      return child;
    });
    await withDeadline(Promise.all(writers.map((w) => waitForLine(w.stdout, /^ready$/, { what: 'a writer to be ready', timeoutMs: 60_000 }))), {
      what: `${WRITERS} writers to be ready`,
      timeoutMs: 60_000,
    });
    for (const w of writers) w.stdin.write('go\n');

    // Meanwhile, the record they all replace is read again and again: a reader must never see it torn.
    const shared = recordPath(stateDir, `${prefix}-shared`);
    let done = false;
    const finished = Promise.all(
      writers.map((w) =>
        waitForLine(w.stdout, /^done$/, { what: 'a writer to finish', timeoutMs: 60_000, detail: () => `exit ${w.exitCode ?? w.signalCode}; stderr:\n${outputOf(w.stderr)}` }),
      ),
    ).finally(() => {
      done = true;
    });
    // Settled below, after the reads: a writer that fails must fail the test, not the process.
    finished.catch(() => undefined);
    let reads = 0;
    const torn: string[] = [];
    while (!done) {
      let text: string;
      try {
        text = readFileSync(shared, 'utf8');
      } catch {
        await new Promise((r) => setImmediate(r));
        continue; // not written yet
      }
      reads++;
      try {
        if (validateRecord(JSON.parse(text)) !== undefined) torn.push(text.slice(0, 80));
      } catch {
        torn.push(`${text.length} bytes: ${text.slice(0, 80)}`);
      }
      await new Promise((r) => setImmediate(r));
    }
    await finished;
    assert.deepEqual(torn, [], `${torn.length} of ${reads} reads saw a torn record`);

    const expected = [...Array.from({ length: WRITERS }, (_, i) => `${prefix}-${i}.json`), `${prefix}-shared.json`].sort();
    assert.deepEqual(recordFiles(stateDir), expected, `${WRITERS} records and the shared one`);
    assert.deepEqual(recordDirEntries(stateDir), expected, 'no temp file is left');
    for (let i = 0; i < WRITERS; i++) {
      const record = JSON.parse(readFileSync(recordPath(stateDir, `${prefix}-${i}`), 'utf8')) as ProcessRecord;
      assert.equal(validateRecord(record), undefined);
      assert.equal(record.name, `writer ${i} round ${rounds - 1}`, 'the last write is the one kept');
      assert.equal(record.args[1]?.length, padding, 'the record is whole');
    }
    for (const w of writers) w.stdin.end();
    await Promise.all(writers.map((w) => waitForExit(w, { what: 'a writer' })));
  });

  test('two recoveries at once over the same stale records: each record is cleaned exactly once', async (t) => {
    const { stateDir } = stateDirWithStore('claim');
    const dead = await deadIdentity();
    const handles: string[] = [];
    const trees = await Promise.all(Array.from({ length: 4 }, () => startMarkedTree(newHandle('claimtree'), RUN)));
    for (const tree of trees) {
      const { leader } = tree;
      writeRecord(stateDir, fabricateRecord({ handle: tree.handle, manager: dead, pid: leader.pid, startTime: leader.startTime, pgid: leader.pgid, notBefore: leader.startTime }));
      handles.push(tree.handle);
    }
    for (let i = 0; i < 36; i++) {
      const handle = newHandle('claim');
      writeRecord(stateDir, fabricateRecord({ handle, manager: dead }));
      handles.push(handle);
    }

    // Both list every record before either claims one (the fixture holds each at a barrier): only the claim can keep them apart.
    const barrier = join(stateDir, 'barrier');
    const recoverers = [0, 1].map(() => {
      const child = spawn(NODE, [fixturePath('recover-once.mjs'), stateDir, barrier], { env: { PATH, [RUN_VARIABLE]: RUN }, stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child);
      outputOf(child.stderr);
      return child;
    });
    const listed = await Promise.all(
      recoverers.map((r) => waitForLine(r.stdout, /^listed (\d+)$/, { what: 'a recovery to list the records', timeoutMs: 30_000, detail: () => outputOf(r.stderr) })),
    );
    assert.deepEqual(listed.map((m) => Number(m[1])), [handles.length, handles.length], 'control: both recoveries see every stale record');
    writeFileSync(barrier, '');
    const reports = await Promise.all(
      recoverers.map(async (r) => {
        const [, json = '{}'] = await waitForLine(r.stdout, /^report (.*)$/, { what: 'a recovery report', timeoutMs: 30_000, detail: () => outputOf(r.stderr) });
        return JSON.parse(json) as RecoveryReport;
      }),
    );
    t.diagnostic(`the two recoveries cleaned ${reports.map((r) => r.trees.length).join(' and ')} of ${handles.length} records`);
    const cleaned = reports.flatMap((r) => r.trees.map((tree) => tree.handle));
    assert.equal(cleaned.length, handles.length, `the two reports together list ${handles.length} trees, not ${cleaned.length} (${reports.map((r) => r.trees.length).join(' + ')})`);
    assert.deepEqual([...cleaned].sort(), [...handles].sort(), 'each stale record is cleaned by exactly one of them');
    const reportedPids = reports.flatMap((r) => r.trees.flatMap((tree) => tree.pids));
    for (const tree of trees) {
      const left = survivorsOf(tree.handle, tree.processes);
      assert.equal(left.length, 0, `tree ${tree.handle} survived:\n${describeProcesses(left)}`);
      for (const p of tree.processes) assert.equal(reportedPids.filter((pid) => pid === p.pid).length, 1, `pid ${p.pid} is reported once`);
    }
    assert.deepEqual(recordDirEntries(stateDir), [], 'no record, and no claimed record, is left');
    await Promise.all(recoverers.map((r) => waitForExit(r, { what: 'a recovery' })));
  });
});

describe('the lifecycle log', () => {
  test('is JSONL: every line parses; a start and a stop give register and unregister lines', async () => {
    const stateDir = makeStateDir('log');
    const run = `${RUN}-log`;
    const manager = await ProcessManager.create({ stateDir, handleSignals: false });
    let id: string;
    try {
      const handle = await manager.start({ command: SLEEP, args: ['1000'], env: { PATH, [RUN_VARIABLE]: run }, strategy: 'pgroup', stdio: 'ignore' });
      id = handle.id;
      await handle.stop();
    } finally {
      await manager.shutdown();
    }
    // The reaper appends its last line once its pipe is closed, after shutdown() returned.
    await waitForLine(join(stateDir, 'lifecycle.jsonl'), /"event":"reaper-exit"/, { what: "the reaper's last line" });
    const lines = lifecycleLines(stateDir);
    for (const [i, line] of lines.entries()) {
      assert.equal(typeof line.event, 'string', `line ${i + 1} has an event`);
      assert.ok(!Number.isNaN(Date.parse(line.time)), `line ${i + 1} has a time`);
      assert.ok(line.source === 'manager' || line.source === 'reaper', `line ${i + 1} says who wrote it: ${JSON.stringify(line)}`);
      assert.equal(typeof line.reason, 'string', `line ${i + 1} has a reason`);
    }
    const events = lines.map((l) => `${l.event}${l.handle === null ? '' : ` ${l.handle}`}`);
    const register = events.indexOf(`register ${id}`);
    const unregister = events.indexOf(`unregister ${id}`);
    assert.ok(events.indexOf('reaper-start') >= 0, `a reaper-start line: ${events.join(', ')}`);
    assert.ok(register >= 0, `a register line for ${id}: ${events.join(', ')}`);
    assert.ok(unregister > register, `an unregister line for ${id} after its register line: ${events.join(', ')}`);
    assert.match(lines[register]?.reason ?? '', /pgroup/, 'the register line names the strategy');
    assert.equal(lines.filter((l) => l.source === 'reaper' && l.event === 'kill').length, 0, 'the reaper killed nothing after a clean stop');
    assert.deepEqual(findMarked({ variable: RUN_VARIABLE, value: run }), []);
  });
});
