/**
 * The ports a service needs before it starts: each declared port (and the
 * port its readiness check connects to) must be free, or be freed on request
 * (`--free-port`: a holder that is tend's; with `--force`: any holder).
 */
import { TendError } from '../core/errors.js';
import { waitIdentityGone } from '../platform/identity.js';
import { findPortHolders, type PortHolder } from '../platform/ports.js';
import type { ProcessTable } from '../platform/proc-table.js';
import { sendSignal } from '../platform/signal.js';
import type { ServiceConfig } from '../service/definition.js';
import { readinessPortOf } from './readiness.js';
import type { FreedPort } from './service-info.js';

/** Grace given to a port holder tend stops before it is killed. */
const PORT_HOLDER_GRACE_MS = 3000;

export interface PortOptions {
  /** Stop a holder of a needed port if it is tend's. */
  readonly freePort?: boolean | undefined;
  /** With freePort: stop any holder, tend's or not. */
  readonly force?: boolean | undefined;
}

export interface PortContext {
  readonly table: ProcessTable;
  /**
   * Stops the service whose tree carries `tendHandle` and resolves true, or
   * resolves false when no service of this supervisor has that tree.
   */
  readonly stopService: (tendHandle: string) => Promise<boolean>;
}

/**
 * The ports that must be free before the service starts: those it declares,
 * and the one its readiness check connects to. A listener already there would
 * answer the check in the service's place.
 */
export function neededPorts(definition: ServiceConfig): number[] {
  const ready = definition.ready ? readinessPortOf(definition.ready) : undefined;
  const ports = [...definition.ports];
  if (ready !== undefined && !ports.includes(ready)) ports.push(ready);
  return ports;
}

export function describeHolder(holder: PortHolder): string {
  if (holder.pid === null) return `a socket on ${holder.address} whose process tend cannot see (another user's, or another network namespace's)`;
  return `pid ${holder.pid} (${holder.command ?? '?'})${holder.tendHandle ? `, a tend-managed process (TEND_ID=${holder.tendHandle})` : ', not tend\'s'}`;
}

/** Refuses (PORT_IN_USE) or frees each needed port that is held; returns what it stopped. */
export async function clearPorts(definition: ServiceConfig, options: PortOptions, context: PortContext): Promise<FreedPort[]> {
  const freed: FreedPort[] = [];
  for (const port of neededPorts(definition)) {
    const holders = findPortHolders(port, context.table);
    if (holders.length === 0) continue;
    const invisible = holders.filter((h) => h.pid === null);
    const foreign = holders.filter((h) => h.pid !== null && h.tendHandle === undefined);
    const refuse = (fix: string): never => {
      const readiness = definition.ports.includes(port) ? undefined : true;
      throw new TendError('PORT_IN_USE', { name: definition.name, port, holders: holders.map(describeHolder).join('; '), fix, readiness });
    };
    if (!options.freePort) refuse(`Stop it, or start with --free-port to stop it if it is tend's (--free-port --force stops any holder).`);
    if (invisible.length > 0) refuse('tend cannot see or stop that holder; stop it as its owner.');
    if (foreign.length > 0 && !options.force) refuse('It is not tend\'s, so --free-port leaves it alone; add --force to stop it anyway.');
    for (const holder of holders) {
      const stopped = await stopHolder(holder, context);
      if (stopped) freed.push({ port, pid: holder.pid as number, command: holder.command, tend: holder.tendHandle !== undefined });
    }
    if (findPortHolders(port, context.table).length > 0) refuse('It was signalled but still holds the port.');
  }
  return freed;
}

/** Stops one holder, identity-checked: a service of ours is stopped whole; any other process gets SIGTERM, then SIGKILL. */
async function stopHolder(holder: PortHolder, context: PortContext): Promise<boolean> {
  if (holder.tendHandle !== undefined && (await context.stopService(holder.tendHandle))) return true;
  if (holder.pid === null || holder.startTime === undefined) return false;
  const { table } = context;
  const identity = { pid: holder.pid, startTime: holder.startTime, bootId: table.bootId() };
  if (!sendSignal(table, { kind: 'process', identity }, 'SIGTERM')) return true;
  if (!(await waitIdentityGone(table, identity, PORT_HOLDER_GRACE_MS))) sendSignal(table, { kind: 'process', identity }, 'SIGKILL');
  return true;
}

/**
 * Why the listener on `port` is not the service's: a holder outside the
 * service's tree, named. Undefined when every holder is a member (or there
 * is none: then the connection attempt itself says whether anything answers).
 * With `answered`, a socket no visible process holds is not counted: a
 * listener the service closes right after it answered lingers in
 * /proc/net/tcp a moment after its last holder let go of it.
 */
export function foreignListener(port: number, members: readonly number[], table: ProcessTable, answered: boolean): string | undefined {
  const tree = new Set(members);
  const others = findPortHolders(port, table).filter((h) => (h.pid === null ? !answered : !tree.has(h.pid)));
  if (others.length === 0) return undefined;
  return `port ${port} is held by ${others.map(describeHolder).join('; ')}, not by the service's tree`;
}
