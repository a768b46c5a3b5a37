// The misbehaving programs the leak tests run, and how to tell that each one
// has built its whole tree (so a stop cannot pass by acting too early).
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { describeProcesses, findMarked, type MarkedProcess, type MarkerMatch } from './proc-scan.js';
import { waitFor, waitForLine } from './wait.js';

export const fixturesDir = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));

export function fixturePath(name: string): string {
  return `${fixturesDir}${name}`;
}

export const SH = '/bin/sh';
export const NODE = process.execPath;
export const PATH = '/usr/local/bin:/usr/bin:/bin';

export type FixtureKey = 'grandchildren' | 'setsid-daemon' | 'sigterm-ignorer' | 'port-holder' | 'fork-storm';

export interface Fixture {
  readonly key: FixtureKey;
  readonly title: string;
  readonly command: string;
  readonly args: readonly string[];
  /** A line the program prints once it is ready; group 1, if any, is the port it listens on. */
  readonly readyLine?: RegExp;
  /** Whether the marked processes found so far are the whole tree. */
  complete(processes: readonly MarkedProcess[]): boolean;
  /** What complete() waits for, for errors. */
  readonly shape: string;
  readonly holdsPort: boolean;
  readonly ignoresSigterm: boolean;
}

const sleeps = (ps: readonly MarkedProcess[]): MarkedProcess[] => ps.filter((p) => p.comm === 'sleep');

/** f1: a shell with two sleeps, one in the background (a grandchild-spawner). */
export const grandchildren: Fixture = {
  key: 'grandchildren',
  title: 'f1 grandchildren (sh -c "sleep & sleep")',
  command: SH,
  args: ['-c', 'sleep 1000 & sleep 1000'],
  complete: (ps) => sleeps(ps).length >= 2,
  shape: 'two sleeps',
  holdsPort: false,
  ignoresSigterm: false,
};

/** f2: a child plus a double-forked setsid daemon in a session of its own. */
export const setsidDaemon: Fixture = {
  key: 'setsid-daemon',
  title: 'f2 double-forking setsid daemon',
  command: SH,
  args: [fixturePath('daemon.sh')],
  complete: (ps) => sleeps(ps).length >= 2 && sleeps(ps).some((p) => p.sid === p.pid),
  shape: 'two sleeps, one of them leading its own session',
  holdsPort: false,
  ignoresSigterm: false,
};

/** f3: a node program that ignores SIGTERM. */
export const sigtermIgnorer: Fixture = {
  key: 'sigterm-ignorer',
  title: 'f3 SIGTERM ignorer',
  command: NODE,
  args: [fixturePath('sigterm-ignorer.mjs')],
  readyLine: /^ready$/,
  complete: (ps) => ps.some((p) => p.cmdline.includes('sigterm-ignorer.mjs')),
  shape: 'the node process',
  holdsPort: false,
  ignoresSigterm: true,
};

/** f4: node → sh → node TCP server on 127.0.0.1, port printed. */
export const portHolder: Fixture = {
  key: 'port-holder',
  title: 'f4 node → sh → node port holder',
  command: NODE,
  args: [fixturePath('port-holder.mjs')],
  readyLine: /^port (\d+)$/,
  complete: (ps) => ps.filter((p) => p.cmdline.includes('port-holder.mjs')).length >= 3,
  shape: 'node, sh and the listening node',
  holdsPort: true,
  ignoresSigterm: false,
};

/** f5: a tree of 100 processes (node, 9 shells, 90 sleeps). */
export const forkStorm: Fixture = {
  key: 'fork-storm',
  title: 'f5 fork storm of 100 processes',
  command: NODE,
  args: [fixturePath('fork-storm.mjs')],
  readyLine: /^ready$/,
  complete: (ps) => ps.length >= 100,
  shape: '100 processes',
  holdsPort: false,
  ignoresSigterm: false,
};

export const allFixtures: readonly Fixture[] = [grandchildren, setsidDaemon, sigtermIgnorer, portHolder, forkStorm];

export interface Ready {
  /** The marked processes once the tree was complete. */
  readonly processes: MarkedProcess[];
  /** The port it listens on, for fixtures that hold one. */
  readonly port: number | undefined;
}

/**
 * Waits until the fixture has printed its ready line (from a stream, or a log
 * file given by path) and every process of its tree is visible in /proc with
 * the marker.
 */
export async function awaitFixtureReady(fixture: Fixture, marker: MarkerMatch, output: Readable | string | undefined, timeoutMs = 15_000): Promise<Ready> {
  let port: number | undefined;
  if (fixture.readyLine) {
    if (output === undefined) throw new Error(`${fixture.key} prints its readiness: give its output`);
    const match = await waitForLine(output, fixture.readyLine, { what: `${fixture.key} to be ready`, timeoutMs });
    if (match[1] !== undefined) port = Number(match[1]);
  }
  let last: MarkedProcess[] = [];
  const processes = await waitFor(
    () => {
      last = findMarked(marker);
      return fixture.complete(last) ? last : undefined;
    },
    { what: `${fixture.key}: ${fixture.shape}`, timeoutMs, detail: () => `marked processes seen:\n${describeProcesses(last)}` },
  );
  if (fixture.holdsPort && port === undefined) throw new Error(`${fixture.key} did not print its port`);
  return { processes, port };
}
