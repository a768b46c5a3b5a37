// Readiness checks against real servers that become ready only after the
// check has seen them not ready; every wait is driven by events (a refused
// probe, a request served, a line fed), never by a fixed sleep.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { waitFor } from '../helpers/wait.js';
import { ReadinessError, readinessPortOf, waitUntilReady, type LineSource } from '../../src/supervisor/readiness.js';
import { freePort } from '../helpers/ports.js';

const servers: (TcpServer | HttpServer)[] = [];

after(async () => {
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))));
});


function listen(server: TcpServer | HttpServer, port: number): Promise<void> {
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: '127.0.0.1' }, () => resolve());
  });
}

/** Sockets and timers alive in this process, by kind: a finished wait must leave them as it found them. */
function openHandles(): { sockets: number; timers: number } {
  const resources = process.getActiveResourcesInfo();
  return {
    sockets: resources.filter((r) => r === 'TCPSocketWrap').length,
    timers: resources.filter((r) => r === 'Timeout').length,
  };
}

/** Nothing else in this file keeps a connection or a timer open between tests. */
const NONE = { sockets: 0, timers: 0 };

/**
 * Waits until the sockets and timers are back to `before`. The servers' own
 * ends of each connection live in this process too and close only once they
 * see the probe's close, a moment later; a socket the check leaked would never
 * close, and fails this at the deadline.
 */
async function expectHandlesBack(before: { sockets: number; timers: number }): Promise<void> {
  await waitFor(
    () => {
      const now = openHandles();
      return now.sockets === before.sockets && now.timers === before.timers;
    },
    { what: `sockets and timers back to ${JSON.stringify(before)}`, timeoutMs: 2000, detail: () => JSON.stringify(openHandles()) },
  );
}

/** A line source the test feeds by hand, which tells how many subscribers it has. */
function createLineFeed(replay: readonly string[] = []): { source: LineSource; emit: (line: string) => void; subscribers: () => number } {
  const listeners = new Set<(line: string) => void>();
  return {
    source: (onLine) => {
      for (const line of replay) onLine(line);
      listeners.add(onLine);
      return () => listeners.delete(onLine);
    },
    emit: (line) => {
      for (const listener of listeners) listener(line);
    },
    subscribers: () => listeners.size,
  };
}

async function rejectsWithReadiness(promise: Promise<void>, outcome: ReadinessError['outcome'], ...fragments: string[]): Promise<ReadinessError> {
  let caught: unknown;
  await promise.catch((error: unknown) => (caught = error));
  assert.ok(caught instanceof ReadinessError, `expected a ReadinessError, got ${String(caught)}`);
  assert.equal(caught.outcome, outcome, caught.message);
  for (const fragment of fragments) assert.ok(caught.message.includes(fragment), `expected "${fragment}" in: ${caught.message}`);
  return caught;
}

test('tcp: ready once a server listens, after a refused probe', async () => {
  const port = await freePort();
  await expectHandlesBack(NONE);
  const server = createTcpServer((socket) => socket.destroy());
  const refusals: string[] = [];
  let listening: Promise<void> | undefined;
  const controller = new AbortController();
  await waitUntilReady(
    { tcp: port, timeoutMs: 10_000 },
    {
      signal: controller.signal,
      onNotReady: (detail) => {
        refusals.push(detail);
        listening ??= listen(server, port);
      },
    },
  );
  await listening;
  assert.equal(refusals[0], 'ECONNREFUSED', 'the first probe must find the port closed');
  await expectHandlesBack(NONE);
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
});

test('tcp: an answer from a listener the owner check disowns is not ready; it is asked before and after each attempt', async () => {
  const port = await freePort();
  const server = createTcpServer((socket) => socket.destroy());
  await listen(server, port);
  const asked: number[] = [];
  const error = await rejectsWithReadiness(
    waitUntilReady({ tcp: port, timeoutMs: 300 }, { signal: new AbortController().signal, listenerOwner: (p) => (asked.push(p), `port ${p} is held by someone else`) }),
    'timeout',
    `the last: port ${port} is held by someone else`,
  );
  assert.deepEqual(error.check, { tcp: port, timeoutMs: 300 });
  assert.ok(asked.length > 0 && asked.every((p) => p === port), `asked about the check's port: ${JSON.stringify(asked)}`);
  // Negative control: the same listener, owned, is ready.
  const owned: number[] = [];
  await waitUntilReady({ tcp: port, timeoutMs: 10_000 }, { signal: new AbortController().signal, listenerOwner: (p) => void owned.push(p) });
  assert.deepEqual(owned, [port, port], 'asked before the attempt and after its answer');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await expectHandlesBack(NONE);
});

test('readinessPortOf: the tcp port, a local URL\'s port (80/443 by default); none for a remote host or a log check', () => {
  assert.equal(readinessPortOf({ tcp: 4700, timeoutMs: 1 }), 4700);
  assert.equal(readinessPortOf({ http: 'http://127.0.0.1:4700/', timeoutMs: 1 }), 4700);
  assert.equal(readinessPortOf({ http: 'http://localhost/health', timeoutMs: 1 }), 80);
  assert.equal(readinessPortOf({ http: 'https://[::1]/', timeoutMs: 1 }), 443);
  assert.equal(readinessPortOf({ http: 'http://0.0.0.0:8080', timeoutMs: 1 }), 8080);
  assert.equal(readinessPortOf({ http: 'http://example.com:4700/', timeoutMs: 1 }), undefined);
  assert.equal(readinessPortOf({ http: 'http://10.0.0.5:4700/', timeoutMs: 1 }), undefined);
  assert.equal(readinessPortOf({ log: '^ready$', timeoutMs: 1 }), undefined);
});

test('tcp: times out with the port and the last refusal in the message', async () => {
  const port = await freePort();
  await expectHandlesBack(NONE);
  const error = await rejectsWithReadiness(
    waitUntilReady({ tcp: port, timeoutMs: 200 }, { signal: new AbortController().signal }),
    'timeout',
    `Readiness check tcp 127.0.0.1:${port} failed: nothing accepted a connection within 200 ms`,
    'the last: ECONNREFUSED',
  );
  assert.deepEqual(error.check, { tcp: port, timeoutMs: 200 });
  await expectHandlesBack(NONE);
});

test('tcp: aborting mid-wait rejects naming the check and the reason, and leaves nothing behind', async () => {
  const port = await freePort();
  await expectHandlesBack(NONE);
  const controller = new AbortController();
  const error = await rejectsWithReadiness(
    waitUntilReady({ tcp: port, timeoutMs: 10_000 }, { signal: controller.signal, onNotReady: () => controller.abort(new Error('service exited')) }),
    'aborted',
    `Readiness check tcp 127.0.0.1:${port} was abandoned after`,
    '(service exited)',
    'ECONNREFUSED',
  );
  assert.equal((error.cause as Error).message, 'service exited');
  await expectHandlesBack(NONE);
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
});

test('an already aborted signal rejects at once', async () => {
  await rejectsWithReadiness(waitUntilReady({ tcp: 1, timeoutMs: 10_000 }, { signal: AbortSignal.abort(new Error('shutting down')) }), 'aborted', '(shutting down)');
});

test('http: a 503 is "not yet", the 200 after it is ready', async () => {
  let requests = 0;
  const server = createHttpServer((_request, response) => {
    requests += 1;
    response.statusCode = requests === 1 ? 503 : 200;
    response.end(requests === 1 ? 'starting' : 'ok');
  });
  const port = await freePort();
  await listen(server, port);
  await expectHandlesBack(NONE);
  const notReady: string[] = [];
  await waitUntilReady({ http: `http://127.0.0.1:${port}/health`, timeoutMs: 10_000 }, { signal: new AbortController().signal, onNotReady: (d) => notReady.push(d) });
  assert.deepEqual(notReady, ['status 503 Service Unavailable']);
  assert.equal(requests, 2);
  await expectHandlesBack(NONE);
});

test('http: times out with the last status in the message', async () => {
  const server = createHttpServer((_request, response) => {
    response.statusCode = 500;
    response.end();
  });
  const port = await freePort();
  await listen(server, port);
  await expectHandlesBack(NONE);
  const url = `http://127.0.0.1:${port}/ready`;
  await rejectsWithReadiness(
    waitUntilReady({ http: url, timeoutMs: 200 }, { signal: new AbortController().signal }),
    'timeout',
    `Readiness check http ${url} failed: no 2xx answer within 200 ms`,
    'the last: status 500 Internal Server Error',
  );
  await expectHandlesBack(NONE);
});

test('http: aborting while a request hangs destroys it', async () => {
  let requestSeen: () => void = () => undefined;
  const seen = new Promise<void>((resolve) => (requestSeen = resolve));
  // Never answers: the probe is in flight when the abort comes.
  const server = createHttpServer(() => requestSeen());
  const port = await freePort();
  await listen(server, port);
  await expectHandlesBack(NONE);
  const controller = new AbortController();
  const waiting = waitUntilReady({ http: `http://127.0.0.1:${port}/`, timeoutMs: 10_000 }, { signal: controller.signal });
  await seen;
  const abortedAt = performance.now();
  controller.abort(new Error('stop requested'));
  await rejectsWithReadiness(waiting, 'aborted', '(stop requested)', 'no attempt finished');
  // The probe's own 5 s request timeout would also end it: the abort must not wait for that.
  const settledAfterMs = performance.now() - abortedAt;
  assert.ok(settledAfterMs < 1000, `the wait settled ${Math.round(settledAfterMs)} ms after the abort`);
  await expectHandlesBack(NONE);
});

test('log: ready at the first matching line, and unsubscribed', async () => {
  const feed = createLineFeed(['booting']);
  const controller = new AbortController();
  const waiting = waitUntilReady({ log: 'listening on port \\d+', timeoutMs: 10_000 }, { signal: controller.signal, logLines: feed.source });
  assert.equal(feed.subscribers(), 1);
  feed.emit('listening on port x');
  feed.emit('listening on port 8080');
  await waiting;
  assert.equal(feed.subscribers(), 0);
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
});

test('log: a matching line replayed while subscribing counts', async () => {
  const feed = createLineFeed(['ready']);
  await waitUntilReady({ log: '^ready$', timeoutMs: 10_000 }, { signal: new AbortController().signal, logLines: feed.source });
  assert.equal(feed.subscribers(), 0);
});

test('log: times out naming the pattern and the last line seen', async () => {
  const feed = createLineFeed(['booting', 'loading config']);
  await expectHandlesBack(NONE);
  await rejectsWithReadiness(
    waitUntilReady({ log: 'listening', timeoutMs: 200 }, { signal: new AbortController().signal, logLines: feed.source }),
    'timeout',
    'Readiness check log /listening/ failed: no line of output matched within 200 ms; 2 line(s) seen, the last "loading config"',
  );
  assert.equal(feed.subscribers(), 0);
  await expectHandlesBack(NONE);
});

test('log: aborting unsubscribes', async () => {
  const feed = createLineFeed();
  const controller = new AbortController();
  const waiting = waitUntilReady({ log: 'listening', timeoutMs: 10_000 }, { signal: controller.signal, logLines: feed.source });
  controller.abort(new Error('service exited'));
  await rejectsWithReadiness(waiting, 'aborted', 'Readiness check log /listening/ was abandoned', '(service exited)', 'no lines were seen');
  assert.equal(feed.subscribers(), 0);
});

test('log: without a line source the check says what is missing', async () => {
  await rejectsWithReadiness(waitUntilReady({ log: 'x', timeoutMs: 200 }, { signal: new AbortController().signal }), 'misconfigured', 'no source of output lines');
});
