// Port holders: parsing /proc/net/tcp and tcp6 (hex, little-endian words,
// LISTEN rows only), and finding the real process behind a listening socket
// through its socket inode, marker included.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { endianness } from 'node:os';
import { isTendError } from '../../src/core/errors.js';
import { findPortHolders, parseProcNetTcp } from '../../src/platform/ports.js';
import { systemProcessTable, type ProcessTable } from '../../src/platform/proc-table.js';
import { killProcessesWithEnv } from '../helpers/proc-scan.js';
import { withDeadline } from '../helpers/wait.js';

const MARK = `test-ports-${randomBytes(6).toString('hex')}`;
const children = new Set<ChildProcess>();
const fixturesSkip = endianness() === 'LE' ? false : 'the fixtures were written by a little-endian kernel';

after(() => {
  for (const child of children) child.kill('SIGKILL');
  killProcessesWithEnv('TEND_ID', MARK);
});

const TCP_HEADER =
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     ';
const TCP_SAMPLE = [
  TCP_HEADER,
  // 127.0.0.1:8080 LISTEN
  '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 41234 1 0000000000000000 100 0 0 10 0                     ',
  // 127.0.0.1:8080 <- 127.0.0.1:51234 ESTABLISHED: a connection, not a holder
  '   1: 0100007F:1F90 0100007F:C822 01 00000000:00000000 00:00000000 00000000  1000        0 41240 1 0000000000000000 20 4 30 10 -1                    ',
  // 0.0.0.0:2024 LISTEN (root)
  '   2: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 640 1 00000000952d1279 100 0 0 10 0                       ',
  // 192.168.1.20:22 TIME_WAIT
  '   3: 1401A8C0:0016 0A01A8C0:D431 06 00000000:00000000 03:00000F1C 00000000     0        0 0 3 0000000000000000                                       ',
  'garbage that is not a socket line',
  '   4: ZZZZZZZZ:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 41299 1',
  '',
].join('\n');

const TCP6_SAMPLE = [
  '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  // [::]:3000 LISTEN
  '   0: 00000000000000000000000000000000:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 51001 1 0000000000000000 100 0 0 10 0',
  // [::1]:5432 LISTEN
  '   1: 00000000000000000000000001000000:1538 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   114        0 51002 1 0000000000000000 100 0 0 10 0',
  // [::ffff:127.0.0.1]:9229 LISTEN
  '   2: 0000000000000000FFFF00000100007F:240D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 51003 1 0000000000000000 100 0 0 10 0',
  // [fe80::1]:443 LISTEN
  '   3: 000080FE000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 51004 1 0000000000000000 100 0 0 10 0',
  // [::1]:5432 <- [::1]:40000 ESTABLISHED
  '   4: 00000000000000000000000001000000:1538 00000000000000000000000001000000:9C40 01 00000000:00000000 00:00000000 00000000   114        0 51005 1 0000000000000000 20 4 30 10 -1',
  // an address of the wrong length
  '   5: 0000000000000000000001000000:1538 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   114        0 51006 1',
].join('\n');

test('parseProcNetTcp keeps only LISTEN rows of an IPv4 table and decodes them', { skip: fixturesSkip }, () => {
  assert.deepEqual(parseProcNetTcp(TCP_SAMPLE), [
    { address: '127.0.0.1', port: 8080, inode: 41234, family: 4 },
    { address: '0.0.0.0', port: 2024, inode: 640, family: 4 },
  ]);
});

test('parseProcNetTcp decodes IPv6 any, loopback, link-local and IPv4-mapped listeners', { skip: fixturesSkip }, () => {
  assert.deepEqual(parseProcNetTcp(TCP6_SAMPLE), [
    { address: '::', port: 3000, inode: 51001, family: 6 },
    { address: '::1', port: 5432, inode: 51002, family: 6 },
    { address: '::ffff:127.0.0.1', port: 9229, inode: 51003, family: 6 },
    { address: 'fe80::1', port: 443, inode: 51004, family: 6 },
  ]);
});

test('parseProcNetTcp returns nothing for an empty table, a header alone, or noise', () => {
  assert.deepEqual(parseProcNetTcp(''), []);
  assert.deepEqual(parseProcNetTcp(`${TCP_HEADER}\n`), []);
  assert.deepEqual(parseProcNetTcp('0A 0A 0A\n:::\n   0: 0100007F:1F90'), []);
});

test('findPortHolders rejects a port that is not one', () => {
  for (const port of [0, -1, 65536, 80.5, Number.NaN]) {
    assert.throws(() => findPortHolders(port), (error: unknown) => isTendError(error, 'SPEC_OPTION_INVALID'));
  }
});

/** A node child listening on `host`, port 0; resolves with the child and the port it printed. */
async function startListener(host: string): Promise<{ child: ChildProcess; port: number }> {
  const script = `
    const server = require('node:net').createServer();
    server.on('error', (e) => { process.stdout.write('error ' + e.code + '\\n'); process.exit(3); });
    server.listen(0, ${JSON.stringify(host)}, () => process.stdout.write('port ' + server.address().port + '\\n'));
    setInterval(() => {}, 1 << 30);
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'], env: { TEND_ID: MARK } });
  children.add(child);
  child.on('error', () => undefined);
  const stdout = child.stdout;
  assert.ok(stdout);
  stdout.setEncoding('utf8');
  const line = new Promise<string>((resolve, reject) => {
    let buffered = '';
    stdout.on('data', (chunk: string) => {
      buffered += chunk;
      const end = buffered.indexOf('\n');
      if (end >= 0) resolve(buffered.slice(0, end));
    });
    child.on('exit', (code, signal) => reject(new Error(`listener exited (${code ?? signal}) before printing its port: ${buffered}`)));
  });
  const first = await withDeadline(line, { what: `the listener on ${host} to print its port` });
  const match = /^port (\d+)$/.exec(first);
  if (!match) throw new Error(`listener on ${host} failed: ${first}`);
  return { child, port: Number(match[1]) };
}

async function stopListener(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
  children.delete(child);
}

/** Whether this machine can listen on ::1 (no IPv6 in the kernel, or loopback without it, say). */
async function ipv6LoopbackSkipReason(): Promise<string | false> {
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '::1', resolve);
    });
    return false;
  } catch (error) {
    return `cannot listen on ::1 here: ${(error as Error).message}`;
  } finally {
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

test('findPortHolders finds a node child listening on 127.0.0.1, with its marker', async () => {
  const { child, port } = await startListener('127.0.0.1');
  try {
    const holders = findPortHolders(port);
    assert.equal(holders.length, 1, JSON.stringify(holders));
    const [holder] = holders;
    assert.equal(holder?.pid, child.pid);
    assert.equal(holder?.tendHandle, MARK);
    assert.match(holder?.command ?? '', /node/);
    assert.equal(holder?.address, '127.0.0.1');
    assert.equal(holder?.port, port);
    assert.equal(holder?.family, 4);
    assert.equal(typeof holder?.startTime, 'number');
  } finally {
    await stopListener(child);
  }
});

test('findPortHolders finds a node child listening on ::1', async (t) => {
  const skip = await ipv6LoopbackSkipReason();
  if (skip) {
    t.skip(skip);
    return;
  }
  const { child, port } = await startListener('::1');
  try {
    const holders = findPortHolders(port);
    assert.equal(holders.length, 1, JSON.stringify(holders));
    const [holder] = holders;
    assert.equal(holder?.pid, child.pid);
    assert.equal(holder?.tendHandle, MARK);
    assert.match(holder?.command ?? '', /node/);
    assert.equal(holder?.address, '::1');
    assert.equal(holder?.family, 6);
  } finally {
    await stopListener(child);
  }
});

test('findPortHolders reports a held port whose owner it cannot see with pid null', async () => {
  const { child, port } = await startListener('127.0.0.1');
  // A table that sees no process stands in for another user's process.
  const real = systemProcessTable();
  const blind: ProcessTable = { read: () => undefined, list: () => [], marker: () => undefined, bootId: () => real.bootId() };
  try {
    assert.deepEqual(findPortHolders(port, blind), [
      { pid: null, command: undefined, address: '127.0.0.1', port, family: 4, startTime: undefined, tendHandle: undefined },
    ]);
  } finally {
    await stopListener(child);
  }
});

test('findPortHolders returns nothing for a port nobody listens on', async () => {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  const port = address.port;
  // Negative control: while open, this very process is the holder.
  assert.deepEqual(
    findPortHolders(port).map((h) => h.pid),
    [process.pid],
  );
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.deepEqual(findPortHolders(port), []);
});
