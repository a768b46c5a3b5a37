/**
 * Where the daemon keeps its files, and what its clients need to know about
 * it without loading the daemon itself (the CLI's queries stay small).
 */
import { join } from 'node:path';

export interface DaemonPaths {
  readonly stateDir: string;
  readonly socket: string;
  /** The daemon's identity and socket, for `tend daemon status/stop --force`. */
  readonly info: string;
  /** The daemon's own output. */
  readonly log: string;
  /** Settings changed at runtime (the limit). */
  readonly settings: string;
  readonly services: string;
  readonly logs: string;
  readonly run: string;
}

export function daemonPaths(stateDir: string): DaemonPaths {
  return {
    stateDir,
    socket: join(stateDir, 'daemon.sock'),
    info: join(stateDir, 'daemon.json'),
    log: join(stateDir, 'daemon.log'),
    settings: join(stateDir, 'settings.json'),
    services: join(stateDir, 'services'),
    logs: join(stateDir, 'logs'),
    run: join(stateDir, 'run'),
  };
}

/** What `<state>/daemon.json` holds. */
export interface DaemonInfo {
  readonly pid: number;
  readonly startTime: number;
  readonly bootId: string;
  readonly startedAt: string;
  readonly socket: string;
  readonly version: string;
}

/** The daemon exits with this when another daemon already serves the state directory. */
export const EXIT_ALREADY_RUNNING = 3;

