import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { endianness } from 'node:os';
import { TendError, errnoOf } from '../core/errors.js';
import { systemProcessTable, readProcFile, type ProcessTable } from './proc-table.js';

/** A TCP socket in LISTEN state, as /proc/net/tcp or tcp6 lists it. */
export interface Listener {
  /** IPv4 dotted quad, or IPv6 text (RFC 5952; "::ffff:a.b.c.d" for an IPv4-mapped address). */
  readonly address: string;
  readonly port: number;
  /** The socket's inode: the only link from a socket to the processes holding it. */
  readonly inode: number;
  /** The socket's family; an IPv4-mapped address on a tcp6 socket is still 6. */
  readonly family: 4 | 6;
}

/** Who listens on a port. */
export interface PortHolder {
  /**
   * The holding process, or null when the socket is held but no visible
   * process has it open (another user's process, or a network namespace's
   * socket seen through a shared /proc): callers say "held, owner unknown".
   */
  readonly pid: number | null;
  /** The command line (NULs as spaces, at most 200 characters); undefined when pid is null. */
  readonly command: string | undefined;
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
  /** With pid, the holder's identity (clock ticks after boot); undefined when pid is null. */
  readonly startTime: number | undefined;
  /** The holder's TEND_ID marker: set when the holder is (a descendant of) a tend-managed process. */
  readonly tendHandle: string | undefined;
}

const LISTEN_STATE = '0A';
const MAX_COMMAND_LENGTH = 200;

// The kernel prints each 32-bit word of the address with %08X of the raw
// (network-order) value read as a host integer, so on a little-endian
// machine the bytes of every word come out reversed.
const littleEndian = endianness() === 'LE';

function decodeWord(hex: string): number[] | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return undefined;
  const bytes = [0, 2, 4, 6].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return littleEndian ? bytes.reverse() : bytes;
}

function decodeAddressBytes(hex: string): number[] | undefined {
  if (hex.length !== 8 && hex.length !== 32) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < hex.length; i += 8) {
    const word = decodeWord(hex.slice(i, i + 8));
    if (!word) return undefined;
    bytes.push(...word);
  }
  return bytes;
}

/** IPv6 text in the RFC 5952 form that `ss` and Node's net module print. */
function formatIpv6(bytes: number[]): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] ?? 0) * 256 + (bytes[i + 1] ?? 0));
  const isMapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  if (isMapped) return `::ffff:${bytes.slice(12).join('.')}`;
  // The longest run of two or more zero groups (the first of equals) becomes "::".
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function parseLine(line: string): Listener | undefined {
  // Fields: sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
  const fields = line.trim().split(/\s+/);
  if (fields.length < 10 || !/^\d+:$/.test(fields[0] ?? '')) return undefined;
  if (fields[3]?.toUpperCase() !== LISTEN_STATE) return undefined;
  const [addressHex, portHex, extra] = (fields[1] ?? '').split(':');
  if (addressHex === undefined || portHex === undefined || extra !== undefined) return undefined;
  if (!/^[0-9A-Fa-f]{4}$/.test(portHex) || !/^\d+$/.test(fields[9] ?? '')) return undefined;
  const bytes = decodeAddressBytes(addressHex);
  if (!bytes) return undefined;
  const family = bytes.length === 4 ? 4 : 6;
  return {
    address: family === 4 ? bytes.join('.') : formatIpv6(bytes),
    port: parseInt(portHex, 16),
    inode: Number(fields[9]),
    family,
  };
}

/** The listening sockets in a /proc/net/tcp or tcp6 text; the header and malformed lines are skipped. */
export function parseProcNetTcp(text: string): Listener[] {
  const listeners: Listener[] = [];
  for (const line of text.split('\n')) {
    const listener = parseLine(line);
    if (listener) listeners.push(listener);
  }
  return listeners;
}

function readListeners(): Listener[] {
  const listeners: Listener[] = [];
  for (const path of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readProcFile(path);
    } catch (error) {
      // tcp6 is absent when the kernel has no IPv6; that only means no IPv6 holders.
      if (errnoOf(error) === 'ENOENT') continue;
      throw error;
    }
    listeners.push(...parseProcNetTcp(text));
  }
  return listeners;
}

/**
 * Which pids have any of `inodes` open, one pass over /proc: each fd
 * directory is read once however many sockets are sought, since a scan costs
 * one readlink per open file of every process.
 */
function findSocketOwners(inodes: ReadonlySet<number>): Map<number, number[]> {
  const owners = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const code = name.charCodeAt(0);
    if (code < 48 || code > 57) continue;
    const pid = Number(name);
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      // EACCES: another user's process; ENOENT: it exited since /proc was listed.
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue; // closed between readdir and readlink
      }
      if (!target.startsWith('socket:[')) continue;
      const inode = Number(target.slice(8, -1));
      if (!inodes.has(inode)) continue;
      const pids = owners.get(inode);
      if (!pids) owners.set(inode, [pid]);
      else if (!pids.includes(pid)) pids.push(pid);
    }
  }
  return owners;
}

function readCommand(pid: number, comm: string): string {
  let command: string;
  try {
    command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    command = '';
  }
  // Kernel threads and processes that blanked their argv have no cmdline; ps shows [comm] then.
  if (command === '') command = `[${comm}]`;
  const chars = Array.from(command);
  return chars.length > MAX_COMMAND_LENGTH ? chars.slice(0, MAX_COMMAND_LENGTH).join('') : command;
}

/**
 * Who listens on `port` (any address, IPv4 or IPv6), one entry per holding
 * pid. A socket shared by several processes (a pre-fork server, a child that
 * inherited it) lists each of them; a socket no visible process holds is
 * listed with pid null.
 */
export function findPortHolders(port: number, table: ProcessTable = systemProcessTable()): PortHolder[] {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TendError('SPEC_OPTION_INVALID', { field: 'port', expected: 'an integer from 1 to 65535', value: port });
  }
  // Inode 0 is a socket being torn down: no process can hold it any more.
  const listeners = readListeners().filter((l) => l.port === port && l.inode !== 0);
  if (listeners.length === 0) return [];
  const owners = findSocketOwners(new Set(listeners.map((l) => l.inode)));

  const holders: PortHolder[] = [];
  const seen = new Set<number>();
  for (const listener of listeners) {
    const { address, family } = listener;
    let owned = false;
    for (const pid of owners.get(listener.inode) ?? []) {
      // The fd link was seen, so the process was alive a moment ago; if it
      // is gone now, it no longer holds the socket.
      const entry = table.read(pid);
      if (!entry) continue;
      owned = true;
      if (seen.has(pid)) continue;
      seen.add(pid);
      holders.push({
        pid,
        command: readCommand(pid, entry.comm),
        address,
        port,
        family,
        startTime: entry.startTime,
        tendHandle: table.marker(pid),
      });
    }
    if (!owned) holders.push({ pid: null, command: undefined, address, port, family, startTime: undefined, tendHandle: undefined });
  }
  return holders;
}
