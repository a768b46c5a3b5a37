// The daemon's wire protocol over a real Unix socket: round trips, many
// requests in flight on one connection answered out of order, every kind of
// bad line answered without losing the connection, TendError codes passed
// through, a 0600 socket, stale sockets replaced and live ones refused, and
// close() aborting handlers and failing the client's pending requests;
// results far above the line limit sent in parts (and refused to version 1
// clients with PROTOCOL_VERSION), requests above it still refused.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, lstatSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TendError } from '../../src/core/errors.js';
import { MAX_LINE_BYTES, MAX_RESULT_BYTES, PROTOCOL_VERSION, type ProtocolHandlers } from '../../src/daemon/protocol.js';
import { connectProtocol } from '../../src/daemon/protocol-client.js';
import { serveProtocol, type ProtocolServer } from '../../src/daemon/protocol-server.js';

const dir = mkdtempSync(join(tmpdir(), 'tend-protocol-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let sockets = 0;
const socketPath = (): string => join(dir, `d${++sockets}.sock`);

const TIMEOUT_MS = 5_000;

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

function defer<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const echo: ProtocolHandlers = {
  echo: (params) => Promise.resolve(params),
};

/** Asserts that `promise` rejects with a TendError of `code`, and returns it. */
async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<TendError> {
  let caught: unknown;
  await promise.then(
    () => assert.fail(`expected a rejection with ${code}`),
    (error: unknown) => (caught = error),
  );
  assert.ok(caught instanceof TendError, `expected a TendError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

/** A connection that writes raw lines and reads the responses one line at a time. */
class RawConnection {
  private buffered = '';
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      for (let i = this.buffered.indexOf('\n'); i !== -1; i = this.buffered.indexOf('\n')) {
        this.lines.push(this.buffered.slice(0, i));
        this.buffered = this.buffered.slice(i + 1);
      }
      this.waiter?.();
    });
  }

  static async open(path: string): Promise<RawConnection> {
    const socket = net.createConnection({ path });
    await once(socket, 'connect');
    return new RawConnection(socket);
  }

  send(text: string): void {
    this.socket.write(text);
  }

  async next(): Promise<Record<string, unknown>> {
    return (await this.nextWithSize()).frame;
  }

  /** The next line and its length in bytes. */
  async nextWithSize(): Promise<{ frame: Record<string, unknown>; bytes: number }> {
    const deadline = AbortSignal.timeout(TIMEOUT_MS);
    while (this.lines.length === 0) {
      if (deadline.aborted) throw new Error(`no response line within ${TIMEOUT_MS} ms`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        deadline.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    const line = this.lines.shift() as string;
    return { frame: JSON.parse(line) as Record<string, unknown>, bytes: Buffer.byteLength(line) };
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Leaves a socket file behind with nothing listening on it, as a killed daemon does. */
function makeStaleSocket(path: string): void {
  const program = `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`;
  const result = spawnSync(process.execPath, ['-e', program], { timeout: TIMEOUT_MS });
  assert.equal(result.signal, 'SIGKILL', `the stale-socket maker should kill itself: ${String(result.stderr)}`);
  assert.ok(lstatSync(path).isSocket(), 'a stale socket file is left behind');
}

async function withServer(handlers: ProtocolHandlers, body: (server: ProtocolServer, path: string) => Promise<void>): Promise<void> {
  const path = socketPath();
  const server = await serveProtocol(path, handlers);
  try {
    await body(server, path);
  } finally {
    await server.close();
  }
}

test('a request round-trips: params in, result out, and the socket file goes with close()', async () => {
  const path = socketPath();
  const server = await serveProtocol(path, { ...echo, nothing: () => Promise.resolve(undefined) });
  const client = await connectProtocol(path, { timeoutMs: TIMEOUT_MS });
  assert.deepEqual(await client.request('echo', { name: 'web', n: [1, 2] }), { name: 'web', n: [1, 2] });
  assert.equal(await client.request('nothing'), null);
  await client.close();
  await server.close();
  assert.equal(existsSync(path), false, 'close() removes the socket file');
  await server.close(); // idempotent
});

test('50 concurrent requests on one connection, finished in random order, are each matched by id', async () => {
  const gates = new Map<number, Deferred<number>>();
  const allStarted = defer<void>();
  const handlers: ProtocolHandlers = {
    wait: (params) => {
      const n = (params as { n: number }).n;
      const gate = defer<number>();
      gates.set(n, gate);
      if (gates.size === 50) allStarted.resolve();
      return gate.promise;
    },
  };
  await withServer(handlers, async (_server, path) => {
    const client = await connectProtocol(path, { timeoutMs: TIMEOUT_MS });
    const results = Array.from({ length: 50 }, (_, n) => client.request('wait', { n }));
    await allStarted.promise;

    const order = Array.from({ length: 50 }, (_, n) => n);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    // Finish one at a time and wait for its answer, so the answers really go out in this order.
    for (const n of order) {
      (gates.get(n) as Deferred<number>).resolve(n * 10);
      assert.equal(await results[n], n * 10, `request ${n} gets its own answer`);
    }
    assert.deepEqual(await Promise.all(results), order.map((_, n) => n * 10).sort((a, b) => a - b));
    await client.close();
  });
});

test('bad JSON, a wrong version, an unknown method and an oversize line each get their error; the connection keeps working', async () => {
  await withServer(echo, async (_server, path) => {
    const raw = await RawConnection.open(path);
    const ping = async (id: number): Promise<void> => {
      raw.send(`${JSON.stringify({ v: PROTOCOL_VERSION, id, method: 'echo', params: { id } })}\n`);
      assert.deepEqual(await raw.next(), { v: PROTOCOL_VERSION, id, ok: true, result: { id } });
    };

    raw.send('{"v":1,"id":1,"method":\n');
    const badJson = await raw.next();
    assert.equal(badJson.ok, false);
    assert.equal(badJson.id, null);
    assert.equal((badJson.error as { code: string }).code, 'PROTOCOL_ERROR');
    await ping(2);

    raw.send(`${JSON.stringify({ v: 99, id: 3, method: 'echo', params: {} })}\n`);
    const wrongVersion = await raw.next();
    assert.equal(wrongVersion.id, 3);
    const versionError = wrongVersion.error as { code: string; message: string };
    assert.equal(versionError.code, 'PROTOCOL_VERSION');
    assert.match(versionError.message, /version 99/);
    assert.match(versionError.message, new RegExp(`version ${PROTOCOL_VERSION}`));
    assert.match(versionError.message, /tend daemon stop/);
    await ping(4);

    raw.send(`${JSON.stringify({ v: 1, id: 5, method: 'toString', params: {} })}\n`);
    const unknown = await raw.next();
    assert.equal(unknown.id, 5);
    assert.equal((unknown.error as { code: string }).code, 'UNKNOWN_METHOD');
    assert.match((unknown.error as { message: string }).message, /"toString".*echo/);
    await ping(6);

    raw.send('x'.repeat(MAX_LINE_BYTES + 100));
    const oversize = await raw.next();
    assert.equal(oversize.id, null);
    assert.equal((oversize.error as { code: string }).code, 'PROTOCOL_ERROR');
    assert.match((oversize.error as { message: string }).message, /1048576-byte limit/);
    // The rest of the long line is dropped up to its newline; the next request is served.
    raw.send('still the same long line\n');
    await ping(7);

    // A line exactly at the limit is accepted (and, not being JSON, answered as such).
    raw.send(`${'y'.repeat(MAX_LINE_BYTES)}\n`);
    assert.match(((await raw.next()).error as { message: string }).message, /could not be parsed/);
    await ping(8);
    raw.close();
  });
});

test('a TendError keeps its code, message and details; any other error is INTERNAL with its message', async () => {
  const handlers: ProtocolHandlers = {
    missing: () => Promise.reject(new TendError('SPEC_CWD_MISSING', { cwd: '/nowhere' })),
    broken: () => Promise.reject(new Error('disk on fire')),
  };
  await withServer(handlers, async (_server, path) => {
    const client = await connectProtocol(path, { timeoutMs: TIMEOUT_MS });
    const tendError = await rejectsWithCode(client.request('missing'), 'SPEC_CWD_MISSING');
    assert.equal(tendError.message, new TendError('SPEC_CWD_MISSING', { cwd: '/nowhere' }).message);
    assert.deepEqual(tendError.details, { cwd: '/nowhere' });
    const internal = await rejectsWithCode(client.request('broken'), 'INTERNAL');
    assert.match(internal.message, /^Internal error: disk on fire\. This is a bug in tend/);
    await rejectsWithCode(client.request('nope'), 'UNKNOWN_METHOD');
    await client.close();
  });
});

test('the socket is 0600 even under a permissive umask, and the umask is restored', async () => {
  const before = process.umask(0o000);
  try {
    await withServer(echo, (_server, path) => {
      assert.equal(statSync(path).mode & 0o777, 0o600);
      return Promise.resolve();
    });
  } finally {
    assert.equal(process.umask(before), 0o000, 'serveProtocol restores the umask it found');
  }
});

test('a stale socket file is replaced; a live socket and a regular file are refused', async () => {
  const stale = socketPath();
  makeStaleSocket(stale);
  await withServer(echo, async () => {
    const replaced = await serveProtocol(stale, echo);
    const client = await connectProtocol(stale, { timeoutMs: TIMEOUT_MS });
    assert.deepEqual(await client.request('echo', { ok: 1 }), { ok: 1 });

    // Negative control: the same path, now live, is refused and keeps serving.
    await rejectsWithCode(serveProtocol(stale, echo), 'PROTOCOL_ADDRESS_IN_USE');
    assert.deepEqual(await client.request('echo', { ok: 2 }), { ok: 2 });
    await client.close();
    await replaced.close();
  });

  const regular = socketPath();
  writeFileSync(regular, 'not a socket');
  const error = await rejectsWithCode(serveProtocol(regular, echo), 'PROTOCOL_ADDRESS_IN_USE');
  assert.match(error.message, /not a socket/);
  assert.equal(existsSync(regular), true, 'a regular file is never deleted');
});

test('connecting where nothing listens says the daemon is not running', async () => {
  const missing = await rejectsWithCode(connectProtocol(socketPath(), { timeoutMs: TIMEOUT_MS }), 'DAEMON_NOT_RUNNING');
  assert.match(missing.message, /not running.*ENOENT/);

  const stale = socketPath();
  makeStaleSocket(stale);
  const refused = await rejectsWithCode(connectProtocol(stale, { timeoutMs: TIMEOUT_MS }), 'DAEMON_NOT_RUNNING');
  assert.match(refused.message, /not running.*ECONNREFUSED/);
});

test('a request that outlives its timeout rejects with PROTOCOL_TIMEOUT; the connection stays usable', async () => {
  const handlers: ProtocolHandlers = {
    ...echo,
    hang: (_params, { signal }) => new Promise((resolve) => signal.addEventListener('abort', () => resolve('aborted'), { once: true })),
  };
  await withServer(handlers, async (_server, path) => {
    const client = await connectProtocol(path, { timeoutMs: TIMEOUT_MS });
    const error = await rejectsWithCode(client.request('hang', {}, { timeoutMs: 50 }), 'PROTOCOL_TIMEOUT');
    assert.match(error.message, /hang within 50 ms/);
    assert.deepEqual(await client.request('echo', { after: 'timeout' }), { after: 'timeout' });
    await client.close();
  });
});

test('close() aborts running handlers and rejects the client\'s pending requests', async () => {
  const started = defer<AbortSignal>();
  const aborted = defer<unknown>();
  const handlers: ProtocolHandlers = {
    hang: (_params, { signal }) => {
      started.resolve(signal);
      return new Promise((_resolve, reject) =>
        signal.addEventListener(
          'abort',
          () => {
            aborted.resolve(signal.reason);
            reject(signal.reason as Error);
          },
          { once: true },
        ),
      );
    },
  };
  const path = socketPath();
  const server = await serveProtocol(path, handlers);
  const client = await connectProtocol(path, { timeoutMs: TIMEOUT_MS });
  const pending = client.request('hang');
  const signal = await started.promise;
  assert.equal(signal.aborted, false);

  const rejected = rejectsWithCode(pending, 'PROTOCOL_CONNECTION_CLOSED');
  await server.close();
  assert.equal(signal.aborted, true, 'the handler\'s signal aborts');
  assert.ok((await aborted.promise) instanceof TendError);
  const error = await rejected;
  assert.match(error.message, /closed before it answered/);
  await rejectsWithCode(client.request('hang'), 'PROTOCOL_CONNECTION_CLOSED');
  assert.equal(existsSync(path), false);
  await client.close();
});

test('a client that disconnects aborts its own running handlers', async () => {
  const started = defer<AbortSignal>();
  const handlers: ProtocolHandlers = {
    hang: (_params, { signal }) => {
      started.resolve(signal);
      return new Promise((resolve) => signal.addEventListener('abort', () => resolve(null), { once: true }));
    },
  };
  await withServer(handlers, async (_server, path) => {
    const client = await connectProtocol(path, { timeoutMs: TIMEOUT_MS });
    const pending = client.request('hang');
    const signal = await started.promise;
    const aborts = once(signal, 'abort');
    const rejected = rejectsWithCode(pending, 'PROTOCOL_CONNECTION_CLOSED');
    await client.close();
    await rejected;
    await aborts;
    assert.equal(signal.aborted, true);
  });
});

/** A result whose JSON text is about `mib` MiB, with quotes, backslashes, non-ASCII and astral characters to escape. */
function largeResult(mib: number): { services: { name: string; note: string; n: number; at: Date }[] } {
  const note = 'a "quoted" \\ path, naïve, 日本, 🚀, tab\t, '.repeat(8);
  const one = JSON.stringify({ name: 'service-00000', note, n: 0, at: new Date(0) }).length;
  const count = Math.ceil((mib * 1024 * 1024) / one);
  return { services: Array.from({ length: count }, (_, n) => ({ name: `service-${String(n).padStart(5, '0')}`, note, n, at: new Date(n) })) };
}

test('a result 6 times the line limit arrives whole, in parts, each line within the limit', async () => {
  const result = largeResult(6);
  const expected = JSON.parse(JSON.stringify(result)) as unknown;
  const handlers: ProtocolHandlers = { ...echo, big: () => Promise.resolve(result) };
  await withServer(handlers, async (_server, path) => {
    const client = await connectProtocol(path, { timeoutMs: 30_000 });
    // Two at once, plus a small one in between: the parts of different answers interleave on one connection.
    const [first, small, second] = await Promise.all([client.request('big'), client.request('echo', { small: true }), client.request('big')]);
    assert.deepEqual(first, expected);
    assert.deepEqual(second, expected);
    assert.deepEqual(small, { small: true });
    await client.close();

    // The frames themselves, as a reader of the raw socket sees them.
    const raw = await RawConnection.open(path);
    raw.send(`${JSON.stringify({ v: PROTOCOL_VERSION, id: 1, method: 'big', params: {} })}\n`);
    let parts = 0;
    let longest = 0;
    let text = '';
    for (;;) {
      const { frame, bytes } = await raw.nextWithSize();
      longest = Math.max(longest, bytes);
      assert.equal(frame.id, 1);
      if (typeof frame.part !== 'string') {
        assert.deepEqual(frame, { v: PROTOCOL_VERSION, id: 1, ok: true, parts });
        break;
      }
      parts++;
      text += frame.part;
    }
    assert.ok(parts >= 6, `expected at least 6 parts, got ${parts}`);
    assert.ok(longest <= MAX_LINE_BYTES, `the longest line is ${longest} bytes`);
    assert.equal(text, JSON.stringify(result), 'the parts join into exactly JSON.stringify(result)');
    raw.close();
  });
});

test('a version 1 client gets a small result on one line, and PROTOCOL_VERSION for one that needs parts', async () => {
  const handlers: ProtocolHandlers = { ...echo, big: () => Promise.resolve(largeResult(2)) };
  await withServer(handlers, async (_server, path) => {
    const raw = await RawConnection.open(path);
    raw.send(`${JSON.stringify({ v: 1, id: 1, method: 'echo', params: { a: 1 } })}\n`);
    assert.deepEqual(await raw.next(), { v: 1, id: 1, ok: true, result: { a: 1 } });
    raw.send(`${JSON.stringify({ v: 1, id: 2, method: 'big', params: {} })}\n`);
    const refused = await raw.next();
    assert.equal(refused.id, 2);
    assert.equal(refused.ok, false);
    const error = refused.error as { code: string; message: string };
    assert.equal(error.code, 'PROTOCOL_VERSION');
    assert.match(error.message, /version 1/);
    raw.send(`${JSON.stringify({ v: 1, id: 3, method: 'echo', params: { a: 3 } })}\n`);
    assert.deepEqual(await raw.next(), { v: 1, id: 3, ok: true, result: { a: 3 } });
    raw.close();
  });
});

test('a request above the line limit is refused, by the client before sending and by the server on the wire', async () => {
  await withServer(echo, async (_server, path) => {
    const client = await connectProtocol(path, { timeoutMs: TIMEOUT_MS });
    const tooLong = { blob: 'z'.repeat(MAX_LINE_BYTES) };
    const error = await rejectsWithCode(client.request('echo', tooLong), 'PROTOCOL_ERROR');
    assert.match(error.message, /1048576-byte line limit; it was not sent/);
    assert.deepEqual(await client.request('echo', { after: 'refusal' }), { after: 'refusal' });
    await client.close();

    // Sent anyway, by a client that does not check: the server drops it and keeps the connection.
    const raw = await RawConnection.open(path);
    raw.send(`${JSON.stringify({ v: PROTOCOL_VERSION, id: 1, method: 'echo', params: tooLong })}\n`);
    const refused = await raw.next();
    assert.equal(refused.id, null);
    assert.equal((refused.error as { code: string }).code, 'PROTOCOL_ERROR');
    raw.send(`${JSON.stringify({ v: PROTOCOL_VERSION, id: 2, method: 'echo', params: { ok: true } })}\n`);
    assert.deepEqual(await raw.next(), { v: PROTOCOL_VERSION, id: 2, ok: true, result: { ok: true } });
    raw.close();
  });
});

test('a result above the client\'s cap is refused with PROTOCOL_ERROR; the connection stays usable', async () => {
  assert.equal(MAX_RESULT_BYTES, 256 * 1024 * 1024);
  const handlers: ProtocolHandlers = { ...echo, big: () => Promise.resolve(largeResult(4)) };
  await withServer(handlers, async (_server, path) => {
    const client = await connectProtocol(path, { timeoutMs: 30_000, maxResultBytes: 2 * 1024 * 1024 });
    const error = await rejectsWithCode(client.request('big'), 'PROTOCOL_ERROR');
    assert.match(error.message, /larger than the 2097152-byte limit/);
    assert.deepEqual(await client.request('echo', { after: 'cap' }), { after: 'cap' });
    await client.close();
  });
});

test('a result that cannot be encoded part-way through becomes INTERNAL, and the gathered parts are dropped', async () => {
  const handlers: ProtocolHandlers = { ...echo, broken: () => Promise.resolve({ ...largeResult(3), tail: 1n }) };
  await withServer(handlers, async (_server, path) => {
    const client = await connectProtocol(path, { timeoutMs: 30_000 });
    const error = await rejectsWithCode(client.request('broken'), 'INTERNAL');
    assert.match(error.message, /could not be encoded as JSON.*BigInt/);
    assert.deepEqual(await client.request('echo', { after: 'broken' }), { after: 'broken' });
    await client.close();
  });
});

test('progress frames reach onProgress in order before the result; clients of versions 1 and 2 get none', async () => {
  const handlers: ProtocolHandlers = {
    slow: (params, context) => {
      context.progress({ step: 1 });
      context.progress({ step: 2 });
      return Promise.resolve(params);
    },
  };
  await withServer(handlers, async (_server, path) => {
    const client = await connectProtocol(path, { timeoutMs: TIMEOUT_MS });
    const heard: unknown[] = [];
    const result = await client.request('slow', { a: 1 }, { onProgress: (progress) => heard.push(progress) });
    assert.deepEqual(result, { a: 1 });
    assert.deepEqual(heard, [{ step: 1 }, { step: 2 }]);
    // A listener that throws loses neither the answer nor the connection.
    const kept = await client.request('slow', { a: 2 }, { onProgress: () => { throw new Error('display broke'); } });
    assert.deepEqual(kept, { a: 2 });
    await client.close();

    const raw = await RawConnection.open(path);
    raw.send(`${JSON.stringify({ v: PROTOCOL_VERSION, id: 1, method: 'slow', params: {} })}\n`);
    assert.deepEqual(await raw.next(), { v: PROTOCOL_VERSION, id: 1, progress: { step: 1 } });
    assert.deepEqual(await raw.next(), { v: PROTOCOL_VERSION, id: 1, progress: { step: 2 } });
    assert.deepEqual(await raw.next(), { v: PROTOCOL_VERSION, id: 1, ok: true, result: {} });
    for (const v of [1, 2]) {
      raw.send(`${JSON.stringify({ v, id: 10 + v, method: 'slow', params: { v } })}\n`);
      assert.deepEqual(await raw.next(), { v, id: 10 + v, ok: true, result: { v } }, `a version ${v} client got a progress frame`);
    }
    raw.close();
  });
});
