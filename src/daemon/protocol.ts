/**
 * The daemon's wire protocol: newline-delimited JSON over a Unix socket in the
 * state directory, independent of what the methods do.
 *
 *   request   { "v": 2, "id": 7, "method": "status", "params": {} }
 *   response  { "v": 2, "id": 7, "ok": true, "result": ... }
 *             { "v": 2, "id": 7, "ok": false, "error": { "code", "message", "details"? } }
 *   or, for a result whose JSON text does not fit one line:
 *             { "v": 2, "id": 7, "part": "<a slice of the result's JSON text>" }   (one or more)
 *             { "v": 2, "id": 7, "ok": true, "parts": <how many> }
 *
 * A connection carries many requests at once; responses come back in the
 * order handlers finish and are matched by `id` (the parts of different
 * responses may interleave). A bad line (too long, not JSON, wrong version,
 * unknown method) gets an error response — with `id: null` when no id could
 * be read — and the connection stays usable. Every line, either way, is at
 * most 1 MiB: a request must fit one line; a result of any size is sent.
 *
 * Why parts of the text rather than, say, the elements of an array field one
 * by one: the framing stays ignorant of what methods return (a large result
 * may be a list, a map or one long string), the client still gets one value
 * from one request, and the daemon can produce the slices lazily
 * (json-text-stream.ts) and send each once the socket has taken the previous
 * one, so a result's full text never sits in the daemon's memory. The
 * client joins the slices and parses once, refusing more than 256 MiB.
 *
 * Versions: version 2 added the part frames. The daemon answers a version 1
 * request as version 1 did, on one line; a result too large for one line is
 * refused with PROTOCOL_VERSION (a version 1 client cannot read parts). A
 * version 2 client talking to a version 1 daemon gets PROTOCOL_VERSION from it.
 *
 * Codes a response may carry besides TendError codes: PROTOCOL_ERROR,
 * PROTOCOL_VERSION, UNKNOWN_METHOD, INTERNAL. Codes raised locally (never
 * sent): DAEMON_NOT_RUNNING, PROTOCOL_TIMEOUT, PROTOCOL_CONNECTION_CLOSED,
 * PROTOCOL_ADDRESS_IN_USE, and PROTOCOL_ERROR for a request too long to send
 * or a response too large to take.
 */
import { chmod, lstat, unlink } from 'node:fs/promises';
import net from 'node:net';
import { errnoOf, isTendError } from '../core/errors.js';
import { JsonTextStream } from './json-text-stream.js';

export const PROTOCOL_VERSION = 2;

/** The versions a daemon answers: version 1 clients get every result on one line, or PROTOCOL_VERSION. */
const SUPPORTED_VERSIONS: readonly number[] = [1, 2];

/** The most a client takes in one response (the sum of its parts), in bytes. */
export const MAX_RESULT_BYTES = 256 * 1024 * 1024;

/** The longest line either side accepts, in bytes, without its newline. */
export const MAX_LINE_BYTES = 1024 * 1024;

const DEFAULT_PROBE_TIMEOUT_MS = 1_000;

export interface ProtocolRequest {
  readonly v: number;
  readonly id: number;
  readonly method: string;
  readonly params: object;
}

export interface ProtocolErrorBody {
  readonly code: string;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export type ProtocolResponse =
  | { readonly v: number; readonly id: number | null; readonly ok: true; readonly result: unknown }
  | { readonly v: number; readonly id: number | null; readonly ok: false; readonly error: ProtocolErrorBody };

export interface HandlerContext {
  /** Aborts when the server closes or the requesting client disconnects. */
  readonly signal: AbortSignal;
}

export type ProtocolHandler = (params: unknown, context: HandlerContext) => Promise<unknown>;

export type ProtocolHandlers = Readonly<Record<string, ProtocolHandler>>;

/** An error response from the daemon, or a local failure to get one; `code` says which. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: string, message: string, details?: Readonly<Record<string, unknown>>, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }

  toJSON(): ProtocolErrorBody {
    return this.details === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, details: this.details };
  }
}

// ---------------------------------------------------------------------------
// Framing

type LineEvent = { readonly kind: 'line'; readonly text: string } | { readonly kind: 'oversize'; readonly bytes: number };

/**
 * Splits a byte stream into lines of at most `maxBytes`. A longer line is
 * reported once, as soon as it passes the limit, and its remaining bytes are
 * dropped up to the next newline so the stream resynchronises there.
 */
class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private discarding = false;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): LineEvent[] {
    const events: LineEvent[] = [];
    let rest = chunk;
    for (let newline = rest.indexOf(0x0a); newline !== -1; newline = rest.indexOf(0x0a)) {
      const head = rest.subarray(0, newline);
      rest = rest.subarray(newline + 1);
      const bytes = this.pendingBytes + head.length;
      const line = this.pending.length === 0 ? head : Buffer.concat([...this.pending, head]);
      this.pending = [];
      this.pendingBytes = 0;
      if (this.discarding) {
        this.discarding = false;
      } else if (bytes > this.maxBytes) {
        events.push({ kind: 'oversize', bytes });
      } else {
        const text = line.toString('utf8').replace(/\r$/, '');
        if (text.trim() !== '') events.push({ kind: 'line', text });
      }
    }
    if (rest.length > 0 && !this.discarding) {
      this.pending.push(rest);
      this.pendingBytes += rest.length;
      if (this.pendingBytes > this.maxBytes) {
        events.push({ kind: 'oversize', bytes: this.pendingBytes });
        this.pending = [];
        this.pendingBytes = 0;
        this.discarding = true;
      }
    }
    return events;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isRequestId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

// ---------------------------------------------------------------------------
// Server

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
    return { id: null, error: { code: 'PROTOCOL_ERROR', message: `Expected a request line to be JSON, but it could not be parsed: ${reason}.` } };
  }
  if (!isPlainObject(value)) {
    return { id: null, error: { code: 'PROTOCOL_ERROR', message: 'Expected a request to be a JSON object { v, id, method, params }.' } };
  }
  const id = isRequestId(value.id) ? value.id : null;
  if (typeof value.v !== 'number' || !SUPPORTED_VERSIONS.includes(value.v)) {
    return {
      id,
      error: {
        code: 'PROTOCOL_VERSION',
        message:
          `The client speaks protocol version ${JSON.stringify(value.v) ?? 'undefined'} but this daemon speaks version ${PROTOCOL_VERSION} (and ${SUPPORTED_VERSIONS.filter((v) => v !== PROTOCOL_VERSION).join(', ')}). ` +
          'The daemon is probably from an older or newer tend: restart it with `tend daemon stop` and run the command again.',
        details: { clientVersion: value.v, daemonVersion: PROTOCOL_VERSION },
      },
    };
  }
  if (id === null) {
    return { id: null, error: { code: 'PROTOCOL_ERROR', message: 'Expected the request `id` to be a non-negative integer.' } };
  }
  if (typeof value.method !== 'string' || value.method === '') {
    return { id, error: { code: 'PROTOCOL_ERROR', message: 'Expected the request `method` to be a non-empty string.' } };
  }
  if (value.params !== undefined && !isPlainObject(value.params)) {
    return { id, error: { code: 'PROTOCOL_ERROR', message: 'Expected the request `params` to be a JSON object.' } };
  }
  if (!Object.hasOwn(handlers, value.method)) {
    const known = Object.keys(handlers).sort().join(', ');
    return {
      id,
      error: {
        code: 'UNKNOWN_METHOD',
        message: `Unknown method ${JSON.stringify(value.method)}. This daemon knows: ${known || '(none)'}.`,
        details: { method: value.method },
      },
    };
  }
  return { request: { v: value.v, id, method: value.method, params: value.params ?? {} } };
}

function errorBodyOf(error: unknown): ProtocolErrorBody {
  if (isTendError(error)) {
    return Object.keys(error.details).length === 0
      ? { code: error.code, message: error.message }
      : { code: error.code, message: error.message, details: error.details };
  }
  return { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
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
  return encodeLine({ v, id, ok: false, error: { code: 'INTERNAL', message: `The result could not be encoded as JSON: ${reason}.` } });
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
        error: {
          code: 'PROTOCOL_VERSION',
          message:
            `The result is longer than the ${maxLineBytes}-byte line limit of protocol version 1, which the client speaks; this daemon sends such results in parts (version ${PROTOCOL_VERSION}). ` +
            'Use the tend that started the daemon, or restart the daemon with `tend daemon stop` from the same tend as the client.',
          details: { clientVersion: v, daemonVersion: PROTOCOL_VERSION },
        },
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

function addressInUse(path: string, cause?: unknown): ProtocolError {
  return new ProtocolError(
    'PROTOCOL_ADDRESS_IN_USE',
    `Another tend daemon is already listening on ${path}. Stop it with \`tend daemon stop\`, or use another state directory.`,
    { path },
    { cause },
  );
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
    throw new ProtocolError(
      'PROTOCOL_ADDRESS_IN_USE',
      `Cannot listen on ${path}: a file that is not a socket is in the way. Move it aside; tend never deletes files it did not create.`,
      { path },
    );
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

    const run = async (request: ProtocolRequest, handler: ProtocolHandler): Promise<void> => {
      const controller = new AbortController();
      running.add(controller);
      ownRequests.add(controller);
      try {
        let result: unknown;
        try {
          result = await handler(request.params, { signal: controller.signal });
        } catch (error) {
          sendError(request.v, request.id, errorBodyOf(error));
          return;
        }
        await writeResult(socket, request, result ?? null, maxLineBytes);
      } finally {
        running.delete(controller);
        ownRequests.delete(controller);
      }
    };

    socket.on('data', (chunk: Buffer) => {
      for (const event of splitter.push(chunk)) {
        if (event.kind === 'oversize') {
          sendError(PROTOCOL_VERSION, null, {
            code: 'PROTOCOL_ERROR',
            message: `A request line is longer than the ${maxLineBytes}-byte limit; it was dropped. Send smaller requests.`,
          });
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
      for (const controller of ownRequests) controller.abort(new ProtocolError('PROTOCOL_CONNECTION_CLOSED', 'The client disconnected before the request finished.'));
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
    const abortReason = new ProtocolError('PROTOCOL_CONNECTION_CLOSED', 'The daemon is shutting down.');
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

// ---------------------------------------------------------------------------
// Client

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
}

export interface ProtocolClient {
  /** Resolves with the result; rejects with a ProtocolError whose `code` is the response's or a local one. */
  request(method: string, params?: object, options?: RequestOptions): Promise<unknown>;
  /** Closes the connection; pending requests reject with PROTOCOL_CONNECTION_CLOSED. Idempotent. */
  close(): Promise<void>;
}

interface Pending {
  readonly method: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: ProtocolError) => void;
  readonly timer: NodeJS.Timeout;
  /** The slices of a result sent in parts, so far. */
  parts: string[];
  partBytes: number;
}

async function openSocket(path: string, timeoutMs: number): Promise<net.Socket> {
  return await new Promise<net.Socket>((resolve, reject) => {
    const socket = net.createConnection({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ProtocolError('PROTOCOL_TIMEOUT', `The daemon at ${path} did not accept a connection within ${timeoutMs} ms. It may be hung: restart it with \`tend daemon stop\`.`, { path, timeoutMs }));
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
        reject(
          new ProtocolError('DAEMON_NOT_RUNNING', `The tend daemon is not running: nothing listens on ${path} (${errno}). Start it with \`tend daemon start\`.`, { path, errno }, { cause: error }),
        );
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
  let closedBy: ProtocolError | undefined;

  const settle = (id: number): Pending | undefined => {
    const entry = pending.get(id);
    if (entry) {
      pending.delete(id);
      clearTimeout(entry.timer);
    }
    return entry;
  };

  const fail = (error: ProtocolError): void => {
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
      entry.reject(
        new ProtocolError(
          'PROTOCOL_ERROR',
          `The daemon's answer to ${entry.method} is larger than the ${maxResultBytes}-byte limit a client takes; it was dropped. Ask for less at a time.`,
          { method: entry.method, maxResultBytes },
        ),
      );
      return;
    }
    entry.parts.push(part);
  };

  const joinParts = (entry: Pending, count: unknown): void => {
    if (count !== entry.parts.length) {
      entry.reject(new ProtocolError('PROTOCOL_ERROR', `The daemon announced ${String(count)} parts of its answer to ${entry.method} but sent ${entry.parts.length}.`, { method: entry.method }));
      return;
    }
    const text = entry.parts.join('');
    entry.parts = [];
    try {
      entry.resolve(JSON.parse(text));
    } catch {
      entry.reject(new ProtocolError('PROTOCOL_ERROR', `The parts of the daemon's answer to ${entry.method} do not join into JSON.`, { method: entry.method }));
    }
  };

  socket.on('data', (chunk: Buffer) => {
    for (const event of splitter.push(chunk)) {
      if (event.kind === 'oversize') {
        // The oversize line's id is unknowable, so its request can never be matched: give up on the connection.
        fail(new ProtocolError('PROTOCOL_ERROR', `The daemon sent a line longer than the ${maxLineBytes}-byte limit; the connection was dropped.`));
        return;
      }
      let response: unknown;
      try {
        response = JSON.parse(event.text);
      } catch {
        fail(new ProtocolError('PROTOCOL_ERROR', `The daemon at ${path} sent a line that is not JSON; the connection was dropped. Is it a tend daemon?`));
        return;
      }
      if (!isPlainObject(response) || !isRequestId(response.id)) continue;
      if (typeof response.part === 'string') {
        takePart(response.id, response.part);
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
        entry.reject(new ProtocolError(code, message, isPlainObject(body.details) ? body.details : undefined));
      }
    }
  });
  socket.on('error', () => {
    // 'close' follows every error and rejects what is pending.
  });
  socket.on('close', () => {
    fail(new ProtocolError('PROTOCOL_CONNECTION_CLOSED', `The connection to the daemon at ${path} was closed before it answered. The daemon may have stopped or crashed.`, { path }));
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
        return Promise.reject(new ProtocolError('PROTOCOL_ERROR', `The params of ${method} cannot be sent as JSON: ${reason}.`, { method }));
      }
      const bytes = Buffer.byteLength(line) - 1;
      if (bytes > maxLineBytes) {
        return Promise.reject(
          new ProtocolError('PROTOCOL_ERROR', `The request ${method} is ${bytes} bytes long, more than the ${maxLineBytes}-byte line limit; it was not sent. Send less at a time.`, {
            method,
            bytes,
            maxLineBytes,
          }),
        );
      }
      return new Promise<unknown>((resolve, reject) => {
        const timer = setTimeout(() => {
          settle(id);
          reject(new ProtocolError('PROTOCOL_TIMEOUT', `The daemon did not answer ${method} within ${timeoutMs} ms. It may be busy or hung.`, { method, timeoutMs }));
        }, timeoutMs);
        pending.set(id, { method, resolve, reject, timer, parts: [], partBytes: 0 });
        socket.write(line);
      });
    },
    async close() {
      if (socket.destroyed) return;
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      fail(new ProtocolError('PROTOCOL_CONNECTION_CLOSED', 'The client connection was closed before the daemon answered.', { path }));
      await closed;
    },
  };
}
