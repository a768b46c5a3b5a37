import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';

let counter = 0;

function tempPath(path: string): string {
  return `${path}.${process.pid}.${counter++}.tmp`;
}

/**
 * Replaces `path` with `data` atomically: written to a temp file beside it,
 * fsynced, then renamed over it. A reader sees the old file or the new one,
 * never a torn one, and concurrent writers never lose each other's files.
 */
export function writeFileAtomicSync(path: string, data: string): void {
  const temp = tempPath(path);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(temp);
    throw error;
  }
  closeSync(fd);
  renameSync(temp, path);
}

/** The same off the event loop, for writes nothing waits on. */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const temp = tempPath(path);
  const file = await open(temp, 'wx', 0o600);
  try {
    await file.writeFile(data);
    await file.sync();
  } catch (error) {
    await file.close();
    await unlink(temp);
    throw error;
  }
  await file.close();
  await rename(temp, path);
}
