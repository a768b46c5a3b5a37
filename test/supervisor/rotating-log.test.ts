// A service's log file: rotation at exact byte boundaries, the keep count,
// file mode, recovery after the directory vanishes, and tails that read only
// the end of each file, across rotations.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, fstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTendError } from '../../src/core/errors.js';
import { RotatingLog, tailLines, type TailIo } from '../../src/supervisor/rotating-log.js';

const root = mkdtempSync(join(tmpdir(), 'tend-rotating-log-'));
after(() => rmSync(root, { recursive: true, force: true }));

let dirCount = 0;
/** A fresh directory per test, so files from one test never meet another's. */
function freshDir(): string {
  const dir = join(root, String(dirCount++));
  mkdirSync(dir);
  return dir;
}

const read = (path: string): string => readFileSync(path, 'utf8');

test('rotates before a write that would pass maxBytes; a write that lands exactly on it does not', () => {
  const path = join(freshDir(), 'svc.log');
  const log = new RotatingLog(path, { maxBytes: 10, keep: 3 });
  log.write('12345');
  log.write('67890'); // exactly 10 bytes: still one file
  assert.equal(read(path), '1234567890');
  assert.equal(existsSync(`${path}.1`), false);
  log.write('a'); // 11 would pass 10
  assert.equal(read(path), 'a');
  assert.equal(read(`${path}.1`), '1234567890');
  assert.equal(log.size, 1);
  log.close();
});

test('a chunk larger than maxBytes goes whole into a fresh file, and the next write rotates it away', () => {
  const path = join(freshDir(), 'svc.log');
  const log = new RotatingLog(path, { maxBytes: 4, keep: 3 });
  log.write('ab');
  log.write('0123456789');
  assert.equal(read(path), '0123456789');
  assert.equal(read(`${path}.1`), 'ab');
  log.write('c');
  assert.equal(read(path), 'c');
  assert.equal(read(`${path}.1`), '0123456789');
  assert.equal(read(`${path}.2`), 'ab');
  log.close();
});

test('keeps only `keep` rotated files, dropping the oldest', () => {
  const path = join(freshDir(), 'svc.log');
  const log = new RotatingLog(path, { maxBytes: 2, keep: 2 });
  for (const chunk of ['aa', 'bb', 'cc', 'dd', 'ee']) log.write(chunk);
  log.close();
  assert.equal(read(path), 'ee');
  assert.equal(read(`${path}.1`), 'dd');
  assert.equal(read(`${path}.2`), 'cc');
  assert.equal(existsSync(`${path}.3`), false);
});

test('creates the log and its rotations with mode 0600', () => {
  const path = join(freshDir(), 'svc.log');
  const log = new RotatingLog(path, { maxBytes: 2 });
  log.write('aa');
  log.write('bb');
  log.close();
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(statSync(`${path}.1`).mode & 0o777, 0o600);
});

test('appends to an existing file and counts its size toward maxBytes', () => {
  const path = join(freshDir(), 'svc.log');
  writeFileSync(path, '1234567', { mode: 0o600 });
  const log = new RotatingLog(path, { maxBytes: 10 });
  assert.equal(log.size, 7);
  log.write('890');
  assert.equal(read(path), '1234567890');
  log.write('x');
  assert.equal(read(`${path}.1`), '1234567890');
  assert.equal(read(path), 'x');
  log.close();
});

test('counts bytes, not characters, for multi-byte text', () => {
  const path = join(freshDir(), 'svc.log');
  const log = new RotatingLog(path, { maxBytes: 4 });
  log.write('é'); // 2 bytes
  log.write('é');
  log.write('é'); // 6 bytes would pass 4
  log.close();
  assert.equal(read(`${path}.1`), 'éé');
  assert.equal(read(path), 'é');
});

test('rejects maxBytes and keep that are not positive integers, naming the option', () => {
  const path = join(freshDir(), 'svc.log');
  for (const [options, field] of [
    [{ maxBytes: 0 }, 'maxBytes'],
    [{ maxBytes: 1.5 }, 'maxBytes'],
    [{ maxBytes: Number.NaN }, 'maxBytes'],
    [{ keep: 0 }, 'keep'],
    [{ keep: -1 }, 'keep'],
  ] as const) {
    assert.throws(
      () => new RotatingLog(path, options),
      (error: unknown) => isTendError(error, 'SPEC_OPTION_INVALID') && error.details.field === field && error.message.includes(`\`${field}\``),
    );
  }
  assert.equal(existsSync(path), false, 'nothing is created for invalid options');
});

test('after the directory is removed, reports once, drops writes, and recovers when it is recreated', () => {
  const dir = freshDir();
  const path = join(dir, 'svc.log');
  const errors: unknown[] = [];
  const log = new RotatingLog(path, { maxBytes: 100, onError: (error) => errors.push(error) });
  log.write('before\n');
  rmSync(dir, { recursive: true });
  log.write('lost 1\n');
  log.write('lost 2\n');
  assert.equal(errors.length, 1);
  assert.equal((errors[0] as NodeJS.ErrnoException).code, 'ENOENT');
  mkdirSync(dir);
  log.write('after\n');
  assert.equal(read(path), 'after\n');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(errors.length, 1);
  log.close();
});

test('a rotation that fails because the directory vanished is reported once; a later outage is reported again', () => {
  const dir = freshDir();
  const path = join(dir, 'svc.log');
  const errors: unknown[] = [];
  const log = new RotatingLog(path, { maxBytes: 4, onError: (error) => errors.push(error) });
  log.write('abcd');
  rmSync(dir, { recursive: true });
  log.write('efgh'); // would rotate
  log.write('ijkl');
  assert.equal(errors.length, 1);
  mkdirSync(dir);
  log.write('mnop');
  assert.equal(read(path), 'mnop');
  rmSync(dir, { recursive: true });
  log.write('qrst');
  assert.equal(errors.length, 2, 'a new outage after recovery is a new report');
  log.close();
});

test('without onError, the first error of an outage is thrown and later writes are dropped quietly', () => {
  const dir = freshDir();
  const path = join(dir, 'svc.log');
  const log = new RotatingLog(path);
  rmSync(dir, { recursive: true });
  assert.throws(() => log.write('x'), { code: 'ENOENT' });
  assert.doesNotThrow(() => log.write('y'));
  log.close();
});

test('a log file deleted by hand is recreated on the next write', () => {
  const path = join(freshDir(), 'svc.log');
  const log = new RotatingLog(path);
  log.write('old\n');
  rmSync(path);
  log.write('new\n');
  assert.equal(read(path), 'new\n');
  log.close();
});

test('close() is idempotent and later writes are dropped', () => {
  const path = join(freshDir(), 'svc.log');
  const log = new RotatingLog(path);
  log.write('a');
  log.close();
  assert.doesNotThrow(() => log.close());
  log.write('b');
  assert.equal(log.closed, true);
  assert.equal(read(path), 'a');
});

test('tailLines returns the last n lines of one file, with or without a final newline', () => {
  const path = join(freshDir(), 'svc.log');
  writeFileSync(path, 'one\ntwo\nthree\n');
  assert.deepEqual(tailLines(path, 2), ['two', 'three']);
  assert.deepEqual(tailLines(path, 10), ['one', 'two', 'three']);
  assert.deepEqual(tailLines(path, 0), []);
  writeFileSync(path, 'one\ntwo\npartial');
  assert.deepEqual(tailLines(path, 2), ['two', 'partial']);
  writeFileSync(path, 'a\n\nb\n');
  assert.deepEqual(tailLines(path, 3), ['a', '', 'b'], 'empty lines are lines');
  writeFileSync(path, '');
  assert.deepEqual(tailLines(path, 3), []);
  assert.deepEqual(tailLines(join(freshDir(), 'missing.log'), 3), []);
});

test('tailLines continues into rotated files, oldest first', () => {
  const path = join(freshDir(), 'svc.log');
  const log = new RotatingLog(path, { maxBytes: 12, keep: 3 });
  for (let i = 1; i <= 9; i++) log.write(`line ${i}\n`); // 7 bytes each: one line per file
  log.close();
  assert.equal(read(path), 'line 9\n');
  assert.equal(read(`${path}.3`), 'line 6\n');
  assert.deepEqual(tailLines(path, 1), ['line 9']);
  assert.deepEqual(tailLines(path, 3), ['line 7', 'line 8', 'line 9']);
  assert.deepEqual(tailLines(path, 100), ['line 6', 'line 7', 'line 8', 'line 9']);
});

test('tailLines joins a line split across a rotation, and keeps a final partial line', () => {
  const path = join(freshDir(), 'svc.log');
  writeFileSync(`${path}.2`, 'first\nsec');
  writeFileSync(`${path}.1`, 'ond\nthi');
  writeFileSync(path, 'rd\nfourth');
  assert.deepEqual(tailLines(path, 2), ['third', 'fourth']);
  assert.deepEqual(tailLines(path, 4), ['first', 'second', 'third', 'fourth']);
});

test('tailLines reads rotated files when the current one is missing', () => {
  const path = join(freshDir(), 'svc.log');
  writeFileSync(`${path}.1`, 'kept\n');
  assert.deepEqual(tailLines(path, 5), ['kept']);
});

test('tailLines keeps UTF-8 characters whole across block boundaries', () => {
  const path = join(freshDir(), 'svc.log');
  writeFileSync(path, 'héllo wörld\nnaïve ☃ line\n');
  for (const blockSize of [1, 2, 3, 5]) {
    assert.deepEqual(tailLines(path, 2, { blockSize }), ['héllo wörld', 'naïve ☃ line'], `blockSize ${blockSize}`);
  }
});

/** Node's file operations, counting the bytes read and the files opened. */
function countingIo(): TailIo & { bytesRead: number; opened: string[] } {
  const io = {
    bytesRead: 0,
    opened: [] as string[],
    openSync(path: string, flags: 'r'): number {
      io.opened.push(path);
      return openSync(path, flags);
    },
    fstatSync: (fd: number) => fstatSync(fd),
    readSync(fd: number, buffer: Buffer, offset: number, length: number, position: number): number {
      const n = readSync(fd, buffer, offset, length, position);
      io.bytesRead += n;
      return n;
    },
    closeSync: (fd: number) => closeSync(fd),
  };
  return io;
}

test('tailLines on a large file reads only its end', () => {
  const path = join(freshDir(), 'svc.log');
  const lineCount = 100_000;
  const text = Array.from({ length: lineCount }, (_, i) => `line ${String(i).padStart(6, '0')} ${'x'.repeat(40)}`).join('\n') + '\n';
  writeFileSync(path, text);
  writeFileSync(`${path}.1`, 'older\n');
  assert.ok(statSync(path).size > 5 * 1024 * 1024);
  const io = countingIo();
  const lines = tailLines(path, 20, { blockSize: 4096, io });
  assert.deepEqual(
    lines,
    Array.from({ length: 20 }, (_, i) => `line ${String(lineCount - 20 + i).padStart(6, '0')} ${'x'.repeat(40)}`),
  );
  assert.ok(io.bytesRead <= 4096, `read ${io.bytesRead} bytes for 20 lines of ~53 bytes`);
  assert.deepEqual(io.opened, [path], 'rotated files are not opened when the current one suffices');
});

test('tailLines skips a file it already read when a rotation renames it between opens', () => {
  const path = join(freshDir(), 'svc.log');
  writeFileSync(`${path}.1`, 'a\n');
  writeFileSync(path, 'b\n');
  const io = countingIo();
  const racing: TailIo = {
    ...io,
    openSync(file: string, flags: 'r'): number {
      const fd = io.openSync(file, flags);
      if (file === path) {
        // The writer rotates right after we opened the current file.
        const log = new RotatingLog(path, { maxBytes: 2, keep: 3 });
        log.write('c\n');
        log.close();
      }
      return fd;
    },
  };
  // Without the skip the answer would be ['b', 'b', 'a'].
  assert.deepEqual(tailLines(path, 3, { io: racing }), ['a', 'b']);
});

test('tailLines rejects a negative or fractional count', () => {
  const path = join(freshDir(), 'svc.log');
  for (const n of [-1, 1.5]) {
    assert.throws(() => tailLines(path, n), (error: unknown) => isTendError(error, 'SPEC_OPTION_INVALID') && error.details.field === 'n');
  }
});

test('tailLines stops where the caller last saw the current file end, so a follower starting there loses and repeats nothing', () => {
  const path = join(freshDir(), 'until.log');
  writeFileSync(path, 'a\nb\n');
  const { ino, size } = statSync(path);
  writeFileSync(path, 'c\n', { flag: 'a' });
  assert.deepEqual(tailLines(path, 10, { until: { ino, size } }), ['a', 'b']);
  assert.deepEqual(tailLines(path, 10), ['a', 'b', 'c']);
  // Another file at the path (rotated since): the bound does not apply to it.
  rmSync(path);
  writeFileSync(path, 'x\ny\nz\n');
  assert.deepEqual(tailLines(path, 10, { until: { ino: statSync(path).ino + 1, size } }), ['x', 'y', 'z']);
});
