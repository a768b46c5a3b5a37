/**
 * One holder per key on this machine, released by the kernel when the holder
 * dies however it dies (SIGKILL included): a Linux abstract Unix socket, whose
 * name the kernel lets only one socket bind. No file is left behind to go
 * stale, so there is no stale-lock takeover to race on.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { errnoOf } from '../core/errors.js';
import { isLinux } from './os.js';

export interface InstanceLock {
  /** Releases the lock. Idempotent. */
  release(): Promise<void>;
}

/** The abstract socket name for `key` (e.g. a state directory's real path). */
export function lockName(key: string): string {
  return `\0tend-lock-${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

/** Takes the lock for `key`, or resolves undefined when another process holds it. */
export async function tryInstanceLock(key: string): Promise<InstanceLock | undefined> {
  if (!isLinux) throw new Error('tend: the single-instance lock needs Linux abstract sockets; this platform is not supported yet.');
  const server = net.createServer((socket) => socket.destroy());
  const held = await new Promise<boolean>((resolve, reject) => {
    server.once('error', (error) => (errnoOf(error) === 'EADDRINUSE' ? resolve(false) : reject(error)));
    server.listen(lockName(key), () => resolve(true));
  });
  if (!held) return undefined;
  // The lock must not keep the process alive on its own.
  server.unref();
  let released: Promise<void> | undefined;
  return {
    release: () => (released ??= new Promise<void>((resolve) => server.close(() => resolve()))),
  };
}
