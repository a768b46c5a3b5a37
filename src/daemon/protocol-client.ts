/** The client's end of the protocol (protocol.ts): one connection, many requests matched by id, results joined from their parts. */
import net from 'node:net';
import { dirname } from 'node:path';
import { TendError, errnoOf } from '../core/errors.js';
import { LineSplitter, MAX_LINE_BYTES, MAX_RESULT_BYTES, PROTOCOL_VERSION, isPlainObject, isRequestId, type ProtocolRequest } from './protocol.js';

export interface ConnectOptions {
  /** Limit for connecting, and the default limit for each request. */
  readonly timeoutMs: number;
  /** Longest line sent or accepted in bytes (default 1 MiB): a longer request is refused before it is sent. */
  readonly maxLineBytes?: number;
  /** Largest result taken, in bytes of JSON text over all its parts (default 256 MiB). */
  readonly maxResultBytes?: number;
}

export interface RequestOptions {
  /** Overrides the connection's default request timeout. */
  readonly timeoutMs?: number;
  /** Hears each progress frame of the request, before it resolves; a listener that throws is ignored. */
  readonly onProgress?: ((progress: unknown) => void) | undefined;
}

export interface ProtocolClient {
  /** Resolves with the result; rejects with a TendError whose `code` is the response's or a local one. */
  request(method: string, params?: object, options?: RequestOptions): Promise<unknown>;
  /** Closes the connection; pending requests reject with PROTOCOL_CONNECTION_CLOSED. Idempotent. */
  close(): Promise<void>;
}

interface Pending {
  readonly method: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: TendError) => void;
  readonly timer: NodeJS.Timeout;
  readonly onProgress: ((progress: unknown) => void) | undefined;
  /** The slices of a result sent in parts, so far. */
  parts: string[];
  partBytes: number;
}

async function openSocket(path: string, timeoutMs: number): Promise<net.Socket> {
  return await new Promise<net.Socket>((resolve, reject) => {
    const socket = net.createConnection({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TendError('PROTOCOL_TIMEOUT', { what: `accept a connection on ${path}`, timeoutMs }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (error: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      const errno = errnoOf(error);
      if (errno === 'ENOENT' || errno === 'ECONNREFUSED') {
        reject(new TendError('DAEMON_NOT_RUNNING', { stateDir: dirname(path), reason: `nothing listens on ${path}: ${errno}` }, { cause: error }));
      } else {
        reject(error);
      }
    };
    socket.once('error', onError);
  });
}

/** Connects to the daemon at `path`. Rejects with DAEMON_NOT_RUNNING when nothing listens there. */
export async function connectProtocol(path: string, options: ConnectOptions): Promise<ProtocolClient> {
  const maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
  const maxResultBytes = options.maxResultBytes ?? MAX_RESULT_BYTES;
  const socket = await openSocket(path, options.timeoutMs);
  const splitter = new LineSplitter(maxLineBytes);
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let closedBy: TendError | undefined;

  const settle = (id: number): Pending | undefined => {
    const entry = pending.get(id);
    if (entry) {
      pending.delete(id);
      clearTimeout(entry.timer);
    }
    return entry;
  };

  const fail = (error: TendError): void => {
    closedBy ??= error;
    for (const id of [...pending.keys()]) settle(id)?.reject(error);
    socket.destroy();
  };

  const takePart = (id: number, part: string): void => {
    const entry = pending.get(id);
    if (!entry) return; // timed out or refused meanwhile: its remaining parts are dropped
    entry.partBytes += Buffer.byteLength(part);
    if (entry.partBytes > maxResultBytes) {
      settle(id);
      entry.reject(new TendError('PROTOCOL_ERROR', { problem: `The daemon's answer to ${entry.method} is larger than the ${maxResultBytes}-byte limit a client takes; it was dropped. Ask for less at a time.` }));
      return;
    }
    entry.parts.push(part);
  };

  const joinParts = (entry: Pending, count: unknown): void => {
    if (count !== entry.parts.length) {
      entry.reject(new TendError('PROTOCOL_ERROR', { problem: `The daemon announced ${String(count)} parts of its answer to ${entry.method} but sent ${entry.parts.length}.` }));
      return;
    }
    const text = entry.parts.join('');
    entry.parts = [];
    try {
      entry.resolve(JSON.parse(text));
    } catch {
      entry.reject(new TendError('PROTOCOL_ERROR', { problem: `The parts of the daemon's answer to ${entry.method} do not join into JSON.` }));
    }
  };

  socket.on('data', (chunk: Buffer) => {
    for (const event of splitter.push(chunk)) {
      if (event.kind === 'oversize') {
        // The oversize line's id is unknowable, so its request can never be matched: give up on the connection.
        fail(new TendError('PROTOCOL_ERROR', { problem: `The daemon sent a line longer than the ${maxLineBytes}-byte limit; the connection was dropped.` }));
        return;
      }
      let response: unknown;
      try {
        response = JSON.parse(event.text);
      } catch {
        fail(new TendError('PROTOCOL_ERROR', { problem: `The daemon at ${path} sent a line that is not JSON; the connection was dropped. Is it a tend daemon?` }));
        return;
      }
      if (!isPlainObject(response) || !isRequestId(response.id)) continue;
      if (typeof response.part === 'string') {
        takePart(response.id, response.part);
        continue;
      }
      if (Object.hasOwn(response, 'progress') && !Object.hasOwn(response, 'ok')) {
        const onProgress = pending.get(response.id)?.onProgress;
        try {
          onProgress?.(response.progress);
        } catch {
          // The caller's display failing must not lose the answer that follows.
        }
        continue;
      }
      const entry = settle(response.id);
      if (!entry) continue;
      if (response.ok === true) {
        if (Object.hasOwn(response, 'result')) entry.resolve(response.result);
        else joinParts(entry, response.parts);
      } else {
        const body = isPlainObject(response.error) ? response.error : {};
        const code = typeof body.code === 'string' ? body.code : 'PROTOCOL_ERROR';
        const message = typeof body.message === 'string' ? body.message : `The daemon answered ${entry.method} with an error but gave no message.`;
        entry.reject(TendError.fromBody(isPlainObject(body.details) ? { code, message, details: body.details } : { code, message }));
      }
    }
  });
  socket.on('error', () => {
    // 'close' follows every error and rejects what is pending.
  });
  socket.on('close', () => {
    fail(new TendError('PROTOCOL_CONNECTION_CLOSED', { reason: `the daemon at ${path} may have stopped or crashed` }));
  });

  return {
    request(method, params = {}, requestOptions = {}) {
      if (closedBy) return Promise.reject(closedBy);
      const id = nextId++;
      const timeoutMs = requestOptions.timeoutMs ?? options.timeoutMs;
      const request: ProtocolRequest = { v: PROTOCOL_VERSION, id, method, params };
      let line: string;
      try {
        line = `${JSON.stringify(request)}\n`;
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        return Promise.reject(new TendError('PROTOCOL_ERROR', { problem: `The params of ${method} cannot be sent as JSON: ${reason}.` }));
      }
      const bytes = Buffer.byteLength(line) - 1;
      if (bytes > maxLineBytes) {
        return Promise.reject(
          new TendError('PROTOCOL_ERROR', { problem: `The request ${method} is ${bytes} bytes long, more than the ${maxLineBytes}-byte line limit; it was not sent. Send less at a time.` }),
        );
      }
      return new Promise<unknown>((resolve, reject) => {
        const timer = setTimeout(() => {
          settle(id);
          reject(new TendError('PROTOCOL_TIMEOUT', { what: `answer ${method}`, timeoutMs }));
        }, timeoutMs);
        pending.set(id, { method, resolve, reject, timer, onProgress: requestOptions.onProgress, parts: [], partBytes: 0 });
        socket.write(line);
      });
    },
    async close() {
      if (socket.destroyed) return;
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      fail(new TendError('PROTOCOL_CONNECTION_CLOSED', { reason: 'the client closed it' }));
      await closed;
    },
  };
}
