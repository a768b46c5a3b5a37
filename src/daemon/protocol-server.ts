/** The daemon's end of the protocol (protocol.ts): listening privately, decoding requests, answering in one line or in parts. */
import { chmod, lstat, unlink } from 'node:fs/promises';
import net from 'node:net';
import { TendError, errnoOf, isTendError } from '../core/errors.js';
import { JsonTextStream } from './json-text-stream.js';
import { DEFAULT_PROBE_TIMEOUT_MS, LineSplitter, PROGRESS_VERSION, PROTOCOL_VERSION, SUPPORTED_VERSIONS, isPlainObject, isRequestId, protocolError, MAX_LINE_BYTES, type ProtocolErrorBody, type ProtocolHandler, type ProtocolHandlers, type ProtocolRequest } from './protocol.js';

export interface ServeOptions {
  /** Longest accepted request line in bytes (default 1 MiB). */
  readonly maxLineBytes?: number;
  /** How long to wait for an existing socket to answer before treating it as live (default 1 s). */
  readonly probeTimeoutMs?: number;
}

export interface ProtocolServer {
  readonly path: string;
  /** Stops accepting, drops every connection, aborts running handlers and removes the socket file. Idempotent. */
  close(): Promise<void>;
}

type Decoded = { readonly request: ProtocolRequest } | { readonly id: number | null; readonly error: ProtocolErrorBody };

function decodeRequest(text: string, handlers: ProtocolHandlers): Decoded {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { id: null, error: protocolError(`Expected a request line to be JSON, but it could not be parsed: ${reason}.`) };
  }
  if (!isPlainObject(value)) {
    return { id: null, error: protocolError('Expected a request to be a JSON object { v, id, method, params }.') };
  }
  const id = isRequestId(value.id) ? value.id : null;
  if (typeof value.v !== 'number' || !SUPPORTED_VERSIONS.includes(value.v)) {
    return { id, error: new TendError('PROTOCOL_VERSION', { clientVersion: value.v, daemonVersion: PROTOCOL_VERSION }).toBody() };
  }
  if (id === null) {
    return { id: null, error: protocolError('Expected the request `id` to be a non-negative integer.') };
  }
  if (typeof value.method !== 'string' || value.method === '') {
    return { id, error: protocolError('Expected the request `method` to be a non-empty string.') };
  }
  if (value.params !== undefined && !isPlainObject(value.params)) {
    return { id, error: protocolError('Expected the request `params` to be a JSON object.') };
  }
  if (!Object.hasOwn(handlers, value.method)) {
    const known = Object.keys(handlers).sort().join(', ');
    return { id, error: new TendError('UNKNOWN_METHOD', { method: value.method, known }).toBody() };
  }
  return { request: { v: value.v, id, method: value.method, params: value.params ?? {} } };
}

function errorBodyOf(error: unknown): ProtocolErrorBody {
  if (isTendError(error)) return error.toBody();
  return new TendError('INTERNAL', { reason: error instanceof Error ? error.message : String(error) }).toBody();
}

/** The JSON text of a result slice is escaped once more inside a part frame: at most 6 bytes per UTF-16 unit (a lone surrogate, \\udxxx). */
const PART_BYTES_PER_CHAR = 6;
/**
 * Slices stay small so that the strings made for one (the slice, its frame)
 * are ordinary young objects that a scavenge frees: a string of 128 KiB or
 * more goes to V8's large-object space, which only a full collection frees.
 */
const PART_CHARS = 16 * 1024;
/** Room for a frame's envelope around its slice: {"v":2,"id":<up to 16 digits>,"part":""}. */
const PART_ENVELOPE_BYTES = 64;

function encodeLine(frame: object): string {
  return `${JSON.stringify(frame)}\n`;
}

function encodingFailed(v: number, id: number, error: unknown): string {
  const reason = error instanceof Error ? error.message : String(error);
  return encodeLine({ v, id, ok: false, error: new TendError('INTERNAL', { reason: `the result could not be encoded as JSON: ${reason}` }).toBody() });
}

/**
 * Writes a result's lines, one at a time: each is written once the socket has
 * taken the previous one, so a slow reader holds back the daemon rather than
 * making it buffer the whole result. A result that cannot be encoded (not
 * JSON serialisable; for a version 1 client, longer than one line) becomes an
 * error response, so the request is still answered.
 */
async function writeResult(socket: net.Socket, request: ProtocolRequest, result: unknown, maxLineBytes: number): Promise<void> {
  const { v, id } = request;
  const text = new JsonTextStream(result);
  const sliceChars = v === 1 ? maxLineBytes : Math.max(2, Math.min(PART_CHARS, Math.floor((maxLineBytes - PART_ENVELOPE_BYTES) / PART_BYTES_PER_CHAR)));
  let first: string | undefined;
  try {
    first = text.read(sliceChars) ?? 'null';
  } catch (error) {
    await writeLine(socket, encodingFailed(v, id, error));
    return;
  }
  if (text.done) {
    const line = `{"v":${v},"id":${id},"ok":true,"result":${first}}\n`;
    if (Buffer.byteLength(line) - 1 <= maxLineBytes) {
      await writeLine(socket, line);
      return;
    }
  }
  if (v === 1) {
    await writeLine(
      socket,
      encodeLine({
        v,
        id,
        ok: false,
        error: new TendError('PROTOCOL_VERSION', {
          clientVersion: v,
          daemonVersion: PROTOCOL_VERSION,
          problem: `The result is longer than the ${maxLineBytes}-byte line limit of protocol version 1, which the client speaks; this daemon sends such results in parts (version ${PROTOCOL_VERSION})`,
        }).toBody(),
      }),
    );
    return;
  }
  let parts = 0;
  for (let slice: string | undefined = first; slice !== undefined; ) {
    if (!(await writeLine(socket, encodeLine({ v, id, part: slice })))) return;
    parts++;
    try {
      slice = text.read(sliceChars);
    } catch (error) {
      // The client drops the parts it has gathered when an error ends them.
      await writeLine(socket, encodingFailed(v, id, error));
      return;
    }
  }
  await writeLine(socket, encodeLine({ v, id, ok: true, parts }));
}

/** Writes one line; resolves once the socket can take more (true), or false when it has closed. */
async function writeLine(socket: net.Socket, line: string): Promise<boolean> {
  if (socket.destroyed || !socket.writable) return false;
  if (socket.write(line)) return true;
  return await new Promise<boolean>((resolve) => {
    const done = (): void => {
      socket.off('drain', onDrain);
      socket.off('close', onClose);
    };
    const onDrain = (): void => {
      done();
      resolve(true);
    };
    const onClose = (): void => {
      done();
      resolve(false);
    };
    socket.on('drain', onDrain);
    socket.on('close', onClose);
  });
}

/** Whether something accepts connections on `path` (false only when the connection is refused). */
async function probeSocket(path: string, timeoutMs: number): Promise<boolean> {
  return await new Promise<boolean>((resolve, reject) => {
    const socket = net.createConnection({ path });
    const timer = setTimeout(() => {
      // A server too busy to accept is still a live server: never remove its socket.
      socket.destroy();
      resolve(true);
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      socket.destroy();
      if (errnoOf(error) === 'ECONNREFUSED') resolve(false);
      else reject(error);
    });
  });
}

function addressInUse(path: string, cause?: unknown): TendError {
  return new TendError('PROTOCOL_ADDRESS_IN_USE', { path, reason: 'another tend daemon is already listening there. Stop it with `tend daemon stop`, or use another state directory' }, { cause });
}

/** Removes a socket file nobody answers on; refuses a live socket and anything that is not a socket. */
async function maybeRemoveStaleSocket(path: string, probeTimeoutMs: number): Promise<boolean> {
  let stats;
  try {
    stats = await lstat(path);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return false;
    throw error;
  }
  if (!stats.isSocket()) {
    throw new TendError('PROTOCOL_ADDRESS_IN_USE', { path, reason: 'a file that is not a socket is in the way. Move it aside; tend never deletes files it did not create' });
  }
  if (await probeSocket(path, probeTimeoutMs)) throw addressInUse(path);
  try {
    await unlink(path);
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT') throw error;
  }
  return true;
}

async function listenPrivately(server: net.Server, path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => {
      server.off('listening', onListening);
      reject(errnoOf(error) === 'EADDRINUSE' ? addressInUse(path, error) : error);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    // The socket file is created by bind(), which listen() calls synchronously
    // for a path: with this umask it is born 0600, so no other user can
    // connect in the moment before the chmod below.
    const previous = process.umask(0o177);
    try {
      server.listen(path);
    } finally {
      process.umask(previous);
    }
  });
}

/**
 * Serves `handlers` on the Unix socket at `path`. A stale socket file (nothing
 * answers) is replaced; a live one is refused with PROTOCOL_ADDRESS_IN_USE.
 */
export async function serveProtocol(path: string, handlers: ProtocolHandlers, options: ServeOptions = {}): Promise<ProtocolServer> {
  const maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
  const sockets = new Set<net.Socket>();
  const running = new Set<AbortController>();
  let closing: Promise<void> | undefined;

  const server = net.createServer((socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    const ownRequests = new Set<AbortController>();
    const splitter = new LineSplitter(maxLineBytes);

    const sendError = (v: number, id: number | null, error: ProtocolErrorBody): void => {
      if (socket.destroyed || !socket.writable) return;
      let line = encodeLine({ v, id, ok: false, error });
      if (Buffer.byteLength(line) - 1 > maxLineBytes) {
        line = encodeLine({ v, id, ok: false, error: { code: error.code, message: `${error.message.slice(0, 1024)} (error message cut: the error did not fit the ${maxLineBytes}-byte line limit)` } });
      }
      socket.write(line);
    };

    /** Progress for one request: only to a client that reads it, only until its answer, only what fits a line. */
    const progressOf = (request: ProtocolRequest, answered: () => boolean) => (value: unknown): void => {
      if (request.v < PROGRESS_VERSION || answered() || socket.destroyed || !socket.writable) return;
      let line: string;
      try {
        line = encodeLine({ v: request.v, id: request.id, progress: value ?? null });
      } catch {
        return;
      }
      // Advice, not an answer: never waits for a slow reader, and one too long is dropped.
      if (Buffer.byteLength(line) - 1 <= maxLineBytes) socket.write(line);
    };

    const run = async (request: ProtocolRequest, handler: ProtocolHandler): Promise<void> => {
      const controller = new AbortController();
      running.add(controller);
      ownRequests.add(controller);
      let answered = false;
      try {
        let result: unknown;
        try {
          result = await handler(request.params, { signal: controller.signal, progress: progressOf(request, () => answered) });
        } catch (error) {
          answered = true;
          sendError(request.v, request.id, errorBodyOf(error));
          return;
        }
        answered = true;
        await writeResult(socket, request, result ?? null, maxLineBytes);
      } finally {
        running.delete(controller);
        ownRequests.delete(controller);
      }
    };

    socket.on('data', (chunk: Buffer) => {
      for (const event of splitter.push(chunk)) {
        if (event.kind === 'oversize') {
          sendError(PROTOCOL_VERSION, null, protocolError(`A request line is longer than the ${maxLineBytes}-byte limit; it was dropped. Send smaller requests.`));
          continue;
        }
        const decoded = decodeRequest(event.text, handlers);
        if ('error' in decoded) {
          sendError(PROTOCOL_VERSION, decoded.id, decoded.error);
          continue;
        }
        // decodeRequest checked that the method is an own property.
        const handler = handlers[decoded.request.method] as ProtocolHandler;
        void run(decoded.request, handler);
      }
    });
    socket.on('error', () => {
      // A client that vanishes mid-write is routine; 'close' follows and cleans up.
    });
    socket.on('close', () => {
      sockets.delete(socket);
      for (const controller of ownRequests) controller.abort(new TendError('PROTOCOL_CONNECTION_CLOSED', { reason: 'the client disconnected' }));
    });
  });

  await maybeRemoveStaleSocket(path, options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS);
  await listenPrivately(server, path);
  try {
    await chmod(path, 0o600);
  } catch (error) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw error;
  }

  const close = async (): Promise<void> => {
    const abortReason = new TendError('PROTOCOL_CONNECTION_CLOSED', { reason: 'the daemon is shutting down' });
    for (const controller of running) controller.abort(abortReason);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    // Closing the listening handle unlinks the socket file. Unlinking again
    // here could delete the socket of a daemon that started since.
    await closed;
  };

  return {
    path,
    close: () => (closing ??= close()),
  };
}
