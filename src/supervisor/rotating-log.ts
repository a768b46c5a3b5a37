/**
 * A service's log file with size-based rotation, and a tail reader for it.
 *
 * The daemon feeds each chunk it reads from a service's stdout or stderr pipe
 * to `RotatingLog.write()`. When a chunk would take the file past `maxBytes`,
 * the file is rotated first: `log.(keep-1)` becomes `log.keep` (replacing the
 * oldest), …, `log` becomes `log.1`, and a fresh `log` is opened.
 *
 * Chunks are never split: a chunk larger than `maxBytes` goes whole into a
 * fresh file (which then exceeds `maxBytes`, and the next write rotates it
 * away). Splitting would cut lines the child wrote in one piece, and a tail
 * of the newest file would then start mid-line more often.
 *
 * `tailLines()` reads the files as the one stream they were written as
 * (oldest rotated file first, the current file last), seeking back from the
 * end in blocks, so `tend logs -n 20` on a 10 MiB log reads a few KiB.
 */
import {
  closeSync,
  fstatSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { errnoOf, TendError } from '../core/errors.js';

export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_LOG_KEEP = 3;
export const LOG_FILE_MODE = 0o600;

export interface RotatingLogOptions {
  /** Rotate before a write would take the current file past this many bytes. Default 10 MiB. */
  readonly maxBytes?: number;
  /** How many rotated files (`path.1` … `path.keep`) to keep. Default 3. */
  readonly keep?: number;
  /**
   * Receives the first error of each outage (a failed open, rotation or
   * write); writes during the outage are dropped, and each later write tries
   * to reopen the file. Without it, that first error is thrown from write().
   */
  readonly onError?: (error: unknown) => void;
}

function validatePositiveInteger(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TendError('SPEC_OPTION_INVALID', { field, expected: 'a positive integer', value });
  }
  return value;
}

/** `path.i`, the i-th rotated file; `path` itself for 0. */
function rotatedPath(path: string, index: number): string {
  return index === 0 ? path : `${path}.${index}`;
}

/** Renames `from` to `to`, replacing `to`; returns `false` when `from` does not exist. */
function maybeRename(from: string, to: string): boolean {
  try {
    renameSync(from, to);
    return true;
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return false;
    throw error;
  }
}

/** Writes the whole buffer: writeSync may write less than asked (e.g. near a full disk). */
function writeAll(fd: number, data: Buffer): void {
  let offset = 0;
  while (offset < data.length) offset += writeSync(fd, data, offset, data.length - offset);
}

export class RotatingLog {
  readonly path: string;
  readonly maxBytes: number;
  readonly keep: number;
  readonly #onError: ((error: unknown) => void) | undefined;
  #fd: number | undefined;
  #dev = 0;
  #ino = 0;
  #size = 0;
  #failing = false;
  #closed = false;

  /** Opens (or creates, mode 0600) `path` for appending; an existing file's size counts toward `maxBytes`. Throws when it cannot be opened. */
  constructor(path: string, options: RotatingLogOptions = {}) {
    this.path = path;
    this.maxBytes = validatePositiveInteger('maxBytes', options.maxBytes ?? DEFAULT_LOG_MAX_BYTES);
    this.keep = validatePositiveInteger('keep', options.keep ?? DEFAULT_LOG_KEEP);
    this.#onError = options.onError;
    this.#open();
  }

  /** Bytes in the current file, as far as this writer knows. */
  get size(): number {
    return this.#size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Appends the chunk, rotating first when it would take the file past
   * `maxBytes`. Writes after close() are dropped: a service's pipes can still
   * deliver output while the supervisor shuts its log.
   */
  write(chunk: Buffer | string): void {
    if (this.#closed) return;
    const data = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (data.length === 0) return;
    try {
      let fd = this.#maybeReopen();
      if (this.#size > 0 && this.#size + data.length > this.maxBytes) fd = this.#rotate();
      writeAll(fd, data);
      this.#size += data.length;
      this.#failing = false;
    } catch (error) {
      // Drop the fd so the next write reopens the file and re-reads its size
      // (a partial write leaves our count wrong).
      this.#closeFd();
      if (this.#failing) return;
      this.#failing = true;
      if (this.#onError === undefined) throw error;
      this.#onError(error);
    }
  }

  /** Closes the file. Calling it again does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeFd();
  }

  #open(): number {
    const fd = openSync(this.path, 'a', LOG_FILE_MODE);
    try {
      const stat = fstatSync(fd);
      this.#dev = stat.dev;
      this.#ino = stat.ino;
      this.#size = stat.size;
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    this.#fd = fd;
    return fd;
  }

  /**
   * Reopens when there is no fd (after an error) or when `path` is no longer
   * the file we hold: someone deleted the log or its directory, and appending
   * to the unlinked file would lose every line without an error.
   */
  #maybeReopen(): number {
    if (this.#fd !== undefined) {
      const stat = statSync(this.path, { throwIfNoEntry: false });
      if (stat !== undefined && stat.dev === this.#dev && stat.ino === this.#ino) return this.#fd;
      this.#closeFd();
    }
    return this.#open();
  }

  #rotate(): number {
    this.#closeFd();
    // Oldest first, so each rename's target has just been moved away; the
    // rename onto `path.keep` replaces (drops) the oldest file. Missing files
    // are skipped: after a few rotations only, not all numbers exist yet.
    for (let index = this.keep - 1; index >= 0; index--) {
      maybeRename(rotatedPath(this.path, index), rotatedPath(this.path, index + 1));
    }
    return this.#open();
  }

  #closeFd(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    try {
      closeSync(fd);
    } catch {
      // The fd is released even when close reports an error (Linux close(2)),
      // and nothing buffered is lost: every write was a completed writeSync.
    }
  }
}

/** The file operations tailLines() uses; a seam for tests that count reads. */
export interface TailIo {
  openSync(path: string, flags: 'r'): number;
  fstatSync(fd: number): { size: number; dev: number; ino: number };
  readSync(fd: number, buffer: Buffer, offset: number, length: number, position: number): number;
  closeSync(fd: number): void;
}

const nodeIo: TailIo = { openSync, fstatSync, readSync, closeSync };

export interface TailOptions {
  /** Bytes read per step back from the end of a file. Default 64 KiB. */
  readonly blockSize?: number;
  readonly io?: TailIo;
  /**
   * Where the current file ended when the caller looked (its inode and size):
   * what was written after that is left out, for the caller to follow from
   * there without losing or repeating a line.
   */
  readonly until?: { readonly ino: number; readonly size: number } | undefined;
}

const NEWLINE = 0x0a;

function countNewlines(buffer: Buffer): number {
  let count = 0;
  for (let index = buffer.indexOf(NEWLINE); index !== -1; index = buffer.indexOf(NEWLINE, index + 1)) count++;
  return count;
}

/** Opens `path` for reading; `undefined` when it does not exist. */
function maybeOpenForRead(io: TailIo, path: string): number | undefined {
  try {
    return io.openSync(path, 'r');
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * The last `n` lines of the log at `path`, oldest first, continuing into the
 * rotated files (`path.1`, `path.2`, …) when the current one holds fewer.
 * The files are read as one stream: a line the writer's chunks split across a
 * rotation comes back whole. A final line without a newline is included.
 * Returns `[]` when no file exists.
 */
export function tailLines(path: string, n: number, options: TailOptions = {}): string[] {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new TendError('SPEC_OPTION_INVALID', { field: 'n', expected: 'a non-negative integer', value: n });
  }
  const blockSize = validatePositiveInteger('blockSize', options.blockSize ?? 64 * 1024);
  const io = options.io ?? nodeIo;
  if (n === 0) return [];

  const blocks: Buffer[] = [];
  let newlines = 0;
  let endsWithNewline: boolean | undefined;
  const seen = new Set<string>();

  for (let index = 0; ; index++) {
    const fd = maybeOpenForRead(io, rotatedPath(path, index));
    if (fd === undefined) {
      // The current file may be missing (its reopen failed) while rotated ones exist.
      if (index === 0) continue;
      break;
    }
    try {
      const stat = io.fstatSync(fd);
      // A rotation between our opens renames the file we just read to
      // `path.1`; the same inode under the next name is skipped, and the file
      // after it is the one that used to precede it.
      const identity = `${stat.dev}:${stat.ino}`;
      if (seen.has(identity)) continue;
      seen.add(identity);
      let position = index === 0 && options.until?.ino === stat.ino ? Math.min(stat.size, options.until.size) : stat.size;
      while (position > 0) {
        const length = Math.min(blockSize, position);
        position -= length;
        const block = Buffer.alloc(length);
        let filled = 0;
        while (filled < length) {
          const read = io.readSync(fd, block, filled, length - filled, position + filled);
          if (read === 0) break;
          filled += read;
        }
        // A file that shrank under us (truncated by hand) ends early; keep what was read.
        const data = filled === length ? block : block.subarray(0, filled);
        if (endsWithNewline === undefined && data.length > 0) endsWithNewline = data[data.length - 1] === NEWLINE;
        blocks.unshift(data);
        newlines += countNewlines(data);
        // n complete lines need n newlines before the last line's end; the
        // stream's own final newline ends the last line and does not count.
        if (newlines - (endsWithNewline === true ? 1 : 0) >= n) return lastLines(blocks, n, endsWithNewline === true);
      }
    } finally {
      io.closeSync(fd);
    }
  }
  return lastLines(blocks, n, endsWithNewline === true);
}

function lastLines(blocks: Buffer[], n: number, endsWithNewline: boolean): string[] {
  // Decode only after joining: a block boundary can fall inside a UTF-8
  // character, but never inside a newline byte.
  const text = Buffer.concat(blocks).toString('utf8');
  if (text.length === 0) return [];
  const lines = (endsWithNewline ? text.slice(0, -1) : text).split('\n');
  return lines.slice(-n);
}
