// The process table: parsing /proc/<pid>/stat (comm may hold anything,
// including ") ("), finding the marker variable in an environ block, and the
// real /proc reader checked against what the kernel and ps say.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { ProcfsTable, findMarker, parseProcStat, systemProcessTable } from '../../src/platform/proc-table.js';
import { killProcessesWithEnv } from '../helpers/proc-scan.js';
import { makeTempDir, removeDir } from '../helpers/unit-local.js';
import { waitFor } from '../helpers/wait.js';

const MARK = `test-proc-table-${randomBytes(6).toString('hex')}`;
const SLEEP = ['/usr/bin/sleep', '/bin/sleep'].find((p) => existsSync(p)) ?? 'sleep';
const children = new Set<ChildProcess>();
const dirs: string[] = [];

after(() => {
  for (const child of children) child.kill('SIGKILL');
  killProcessesWithEnv('TEND_ID', MARK);
  for (const dir of dirs) removeDir(dir);
});

function startChild(file: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(file, args, { stdio: 'ignore', env: { TEND_ID: MARK, ...env } });
  children.add(child);
  child.on('error', () => undefined);
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
  children.delete(child);
}

/** A stat line as the kernel writes it: fields 3..52 after "pid (comm) ". */
function statLine(pid: number, comm: string, fields: { state?: string; ppid?: number; pgid?: number; sid?: number; start?: number } = {}): string {
  const rest = new Array<string>(50).fill('0');
  rest[0] = fields.state ?? 'S';
  rest[1] = String(fields.ppid ?? 1);
  rest[2] = String(fields.pgid ?? pid);
  rest[3] = String(fields.sid ?? pid);
  rest[18] = '0'; // field 21, itrealvalue: always 0
  rest[19] = String(fields.start ?? 123456); // field 22, starttime
  rest[20] = '987654321'; // field 23, vsize: must not be taken for the start time
  rest[11] = '11'; // field 14, utime
  rest[12] = '7'; // field 15, stime
  rest[21] = '300'; // field 24, rss in pages
  return `${pid} (${comm}) ${rest.join(' ')}\n`;
}

test('parseProcStat reads pid, state, ppid, pgid, sid, field 22 (start time), CPU ticks and resident pages', () => {
  const entry = parseProcStat(statLine(4242, 'node', { state: 'R', ppid: 17, pgid: 4200, sid: 4100, start: 8_000_001 }));
  assert.deepEqual(entry, { pid: 4242, state: 'R', ppid: 17, pgid: 4200, sid: 4100, startTime: 8_000_001, comm: 'node', cpuTicks: 18, rssPages: 300 });
});

test('parseProcStat survives any comm: spaces, parentheses, ") (", fake fields, newline, empty', () => {
  const comms = [
    'my server',
    '(sd-pam)',
    'a) (b',
    ') (',
    ')',
    '(',
    'x) Z 1 1 1 0',
    'evil) R 99 99 99 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1',
    'tab\there',
    'line\nbreak',
    '',
    '  ',
  ];
  for (const comm of comms) {
    const entry = parseProcStat(statLine(77, comm, { state: 'S', ppid: 5, pgid: 6, sid: 7, start: 424242 }));
    assert.ok(entry, `no entry for comm ${JSON.stringify(comm)}`);
    assert.deepEqual(entry, { pid: 77, state: 'S', ppid: 5, pgid: 6, sid: 7, startTime: 424242, comm, cpuTicks: 18, rssPages: 300 }, `comm ${JSON.stringify(comm)}`);
  }
});

test('parseProcStat refuses text that is not a stat line', () => {
  for (const text of ['', 'garbage', '12 comm S 1 2 3', '12 (x', '12 (x)', '12 (x) S 1 2 3', 'abc (x) S 1 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1']) {
    assert.equal(parseProcStat(text), undefined, JSON.stringify(text));
  }
});

test('findMarker finds TEND_ID first, in the middle, last, and nowhere else', () => {
  const block = (...vars: string[]): string => `${vars.join('\0')}\0`;
  assert.equal(findMarker(block('TEND_ID=abc', 'PATH=/bin')), 'abc');
  assert.equal(findMarker(block('PATH=/bin', 'TEND_ID=mid', 'HOME=/root')), 'mid');
  assert.equal(findMarker(block('PATH=/bin', 'TEND_ID=last')), 'last');
  assert.equal(findMarker('PATH=/bin\0TEND_ID=unterminated'), 'unterminated');
  assert.equal(findMarker('TEND_ID=only'), 'only');
  assert.equal(findMarker(block('TEND_ID=')), '');
  assert.equal(findMarker(block('TEND_ID=a=b=c')), 'a=b=c');
  // Absent, or only look-alikes: a name that ends with TEND_ID, one that starts with it, a value that holds it.
  assert.equal(findMarker(''), undefined);
  assert.equal(findMarker(block('PATH=/bin', 'HOME=/root')), undefined);
  assert.equal(findMarker(block('XTEND_ID=evil')), undefined);
  assert.equal(findMarker(block('PATH=/bin', 'XTEND_ID=evil', 'HOME=/')), undefined);
  assert.equal(findMarker(block('MY_TEND_ID=evil')), undefined);
  assert.equal(findMarker(block('TEND_IDX=evil')), undefined);
  assert.equal(findMarker(block('TEND_ID')), undefined);
  assert.equal(findMarker(block('NOTE=TEND_ID=evil')), undefined);
  assert.equal(findMarker(block('NOTE=x TEND_ID=evil')), undefined);
  // The look-alike comes first, the real one later: the real one wins.
  assert.equal(findMarker(block('XTEND_ID=evil', 'TEND_ID=real')), 'real');
  assert.equal(findMarker(block('NOTE=TEND_ID=evil', 'TEND_ID=real')), 'real');
});

test('ProcfsTable reads this process: pid, ppid, pgid, sid, state, comm, start time', () => {
  const table = new ProcfsTable();
  const first = table.read(process.pid);
  assert.ok(first, 'no entry for our own pid');
  assert.equal(first.pid, process.pid);
  assert.equal(first.ppid, process.ppid);
  assert.match(first.state, /^[RS]$/);
  const [pgid, sid, comm] = execFileSync('ps', ['-o', 'pgid=,sid=,comm=', '-p', String(process.pid)], { encoding: 'utf8' }).trim().split(/\s+/);
  assert.equal(first.pgid, Number(pgid));
  assert.equal(first.sid, Number(sid));
  assert.equal(first.comm, comm);
  // Field 22 in clock ticks after boot: our uptime says roughly when we started.
  const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  const bootUptime = Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]);
  const expected = (bootUptime - process.uptime()) * hz;
  assert.ok(Math.abs(first.startTime - expected) < 2 * hz, `start time ${first.startTime} ticks, expected about ${expected}`);
  for (let i = 0; i < 5; i++) assert.equal(table.read(process.pid)?.startTime, first.startTime, 'start time changed between reads');
  assert.equal(new ProcfsTable().read(process.pid)?.startTime, first.startTime);
  assert.equal(systemProcessTable().read(process.pid)?.startTime, first.startTime);
});

test('ProcfsTable: boot id, list(), absent pids', () => {
  const table = new ProcfsTable();
  const bootId = table.bootId();
  assert.match(bootId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal(bootId, readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim());
  assert.equal(table.bootId(), bootId);
  const all = table.list();
  assert.ok(all.some((e) => e.pid === process.pid), 'list() misses this process');
  assert.ok(all.some((e) => e.pid === process.ppid), 'list() misses our parent');
  assert.ok(all.every((e) => Number.isInteger(e.pid) && e.pid > 0 && Number.isInteger(e.startTime)));
  const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'latin1'));
  assert.equal(table.read(pidMax + 1), undefined);
  assert.equal(table.marker(pidMax + 1), undefined);
});

test('ProcfsTable reads a child: odd comm, ppid, start time, marker', async () => {
  const dir = makeTempDir();
  dirs.push(dir);
  // comm is the name the program was executed by (at most 15 bytes): a symlink gives it any name.
  const oddName = 'a) (b c';
  symlinkSync(SLEEP, `${dir}/${oddName}`);
  const child = startChild(`${dir}/${oddName}`, ['1000'], { BEFORE: '1', XTEND_ID: 'evil' });
  const pid = child.pid;
  assert.ok(pid !== undefined);
  const table = new ProcfsTable();
  const entry = await waitFor(() => {
    const e = table.read(pid);
    return e?.comm === oddName ? e : undefined;
  }, { what: `the child to exec ${oddName}` });
  assert.equal(entry.ppid, process.pid);
  assert.equal(entry.pid, pid);
  assert.ok(entry.startTime >= (table.read(process.pid)?.startTime ?? Infinity), 'child started before its parent?');
  assert.equal(table.marker(pid), MARK);
  assert.ok(table.list().some((e) => e.pid === pid && e.comm === oddName));
  await stopChild(child);
  assert.equal(table.read(pid), undefined, 'a reaped child is still in the table');
  assert.equal(table.marker(pid), undefined);
});

test('ProcfsTable: no marker in a process without TEND_ID, even with look-alikes', async () => {
  const child = spawn(SLEEP, ['1000'], { stdio: 'ignore', env: { XTEND_ID: MARK, TEND_IDX: MARK } });
  children.add(child);
  const pid = child.pid;
  assert.ok(pid !== undefined);
  const table = new ProcfsTable();
  await waitFor(() => table.read(pid)?.comm === 'sleep', { what: 'the child to exec sleep' });
  assert.equal(table.marker(pid), undefined);
  await stopChild(child);
});

test('ProcfsTable returns zombies, with state Z', async () => {
  // sh forks a short-lived child and then becomes sleep, which never reaps it.
  const child = startChild('/bin/sh', ['-c', `${SLEEP} 0 & exec ${SLEEP} 1000`]);
  const pid = child.pid;
  assert.ok(pid !== undefined);
  const table = new ProcfsTable();
  const zombie = await waitFor(() => table.list().find((e) => e.ppid === pid && e.state === 'Z'), { what: 'the unreaped child to become a zombie' });
  assert.equal(table.read(zombie.pid)?.state, 'Z');
  await stopChild(child);
});
