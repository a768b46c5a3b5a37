/**
 * What the daemon can do: one table of methods, each with its params schema,
 * its result type and the error codes it may answer with. The socket server
 * checks params against it before a handler runs, the client is typed by it
 * (no casts of answers), and the HTTP API serves the same table.
 */
import type { ErrorCode } from '../core/errors.js';
import { array, boolean, integer, object, optional, string, type Infer, type InputOf, type Schema } from '../core/schema.js';
import { MAX_DURATION_MS } from '../service/duration.js';
import type { ServiceConfig } from '../service/definition.js';
import { SERVICE_NAME_PATTERN, SERVICE_NAME_RULE } from '../service/name.js';
import type { LimiterStatus, QueuePlace } from '../supervisor/limiter.js';
import type { KillAllReport, ServiceInfo, StartReport } from '../supervisor/service-info.js';
import { checkDefinition } from '../supervisor/service-store.js';

export interface MethodSpec<P, I, R, G = never> {
  readonly summary: string;
  /** A query answers at once; a command may wait (readiness, the queue, stop timeouts). */
  readonly kind: 'query' | 'command';
  readonly params: Schema<P, I>;
  /** Codes the method answers with besides the protocol's own. */
  readonly errors: readonly ErrorCode[];
  /** The result's type; never set at run time. */
  readonly result?: R;
  /** The type of its progress frames, sent before the result (never, for a method that sends none); never set at run time. */
  readonly progress?: G;
}

/** `method<Result, Progress>()({...})`: the result and progress types are given, the params type is read off the schema. */
function method<R, G = never>() {
  return <P, I>(spec: Omit<MethodSpec<P, I, R, G>, 'result' | 'progress'>): MethodSpec<P, I, R, G> => spec;
}

/**
 * Progress of a start that waits in the limiter's queue (over `tend limit`):
 * sent when it enters the queue and each time its place changes. `place` 1
 * is next in line; `service` names the service (for `up`, one of several).
 */
export interface StartProgress extends QueuePlace {
  readonly service: string;
  readonly state: 'queued';
}

const name = string({ pattern: SERVICE_NAME_PATTERN, expected: `a service name (${SERVICE_NAME_RULE})` });
const timeoutMs = optional(integer({ min: 0, max: MAX_DURATION_MS, expected: 'a number of milliseconds' }));
/** Over the limit: wait in the queue (the default), or be refused with LIMIT_REACHED. */
const queue = optional(boolean());
/** Stop a holder of a declared port if it is tend's; with force, any holder. */
const freePort = optional(boolean());
const force = optional(boolean());

/** A definition in its JSON form: checked field by field against the service schema. */
const definition: Schema<ServiceConfig, Record<string, unknown>> = {
  json: { type: 'object', description: 'a service definition (see docs: the service schema)' },
  parse: (value, path) => checkDefinition(value, path),
};

export interface DaemonDescription {
  readonly pid: number;
  readonly version: string;
  readonly state_dir: string;
  readonly socket: string;
  readonly started_at: string;
  readonly uptime_ms: number;
  readonly services: number;
  readonly rss_bytes: number;
  readonly reaper_pid: number | null;
  /** The services this daemon started again when it started, because they were running when the last one ended. */
  readonly restored: readonly string[];
}

export interface UpResult {
  readonly services: ServiceInfo[];
  readonly errors: { readonly name: string; readonly code: string; readonly message: string }[];
}

export interface LimitResult extends LimiterStatus {
  readonly old_limit?: number;
  readonly new_limit?: number;
}

export interface ShutdownResult {
  readonly pid: number;
  /** Services that were running and are being stopped. */
  readonly stopping: number;
  /** How long their stops may take, all together. */
  readonly stop_budget_ms: number;
  /** Services that stay wanted: the next daemon starts them again. */
  readonly wanted: readonly string[];
}

const serviceErrors: readonly ErrorCode[] = ['SERVICE_UNKNOWN'];
const startErrors: readonly ErrorCode[] = [
  'SERVICE_UNKNOWN',
  'SERVICE_START_FAILED',
  'SERVICE_NOT_READY',
  'DEPENDENCY_FAILED',
  'PORT_IN_USE',
  'LIMIT_REACHED',
  'START_FAILED',
  'CONTAINMENT_FAILED',
  'STRATEGY_UNAVAILABLE',
  'MANAGER_CLOSED',
];

export const methods = {
  ping: method<DaemonDescription>()({
    summary: "the daemon's pid, version, uptime, memory and number of services",
    kind: 'query',
    params: object({}),
    errors: [],
  }),
  ps: method<{ services: ServiceInfo[]; limit: LimiterStatus }>()({
    summary: 'every service, with its state, pids, CPU and memory, and the limit',
    kind: 'query',
    params: object({}),
    errors: [],
  }),
  info: method<ServiceInfo>()({
    summary: 'everything about one service',
    kind: 'query',
    params: object({ name }),
    errors: serviceErrors,
  }),
  define: method<StartReport, StartProgress>()({
    summary: 'add or replace a service definition, and start it unless start is false',
    kind: 'command',
    params: object({ definition, start: optional(boolean()), queue, freePort, force }),
    errors: [...startErrors, 'SERVICE_RUNNING', 'SPEC_OPTION_INVALID'],
  }),
  start: method<StartReport, StartProgress>()({
    summary: 'start a defined service (and what it depends on)',
    kind: 'command',
    params: object({ name, queue, freePort, force }),
    errors: startErrors,
  }),
  stop: method<{ services: ServiceInfo[] }>()({
    summary: 'stop services (their whole trees), dependents first; they stay defined',
    kind: 'command',
    params: object({ names: optional(array(name)), all: optional(boolean()), timeoutMs }),
    errors: [...serviceErrors, 'STOP_FAILED'],
  }),
  restart: method<StartReport, StartProgress>()({
    summary: 'stop a service and start it again',
    kind: 'command',
    params: object({ name, queue, freePort, force, timeoutMs }),
    errors: [...startErrors, 'STOP_FAILED'],
  }),
  delete: method<ServiceInfo>()({
    summary: 'stop a service and forget its definition',
    kind: 'command',
    params: object({ name, timeoutMs }),
    errors: [...serviceErrors, 'STOP_FAILED'],
  }),
  up: method<UpResult, StartProgress>()({
    summary: 'define services and start them all; per-service errors are in the result',
    kind: 'command',
    params: object({ definitions: array(definition), queue }),
    errors: ['SERVICE_RUNNING', 'SPEC_OPTION_INVALID'],
  }),
  limit: method<LimitResult>()({
    summary: 'the concurrency limit and what counts against it; with max, change it',
    kind: 'query',
    params: object({ max: optional(integer({ min: 1, max: 1_000_000, expected: 'a whole number from 1' })) }),
    errors: [],
  }),
  killAll: method<KillAllReport>()({
    summary: 'SIGKILL every service tree now, refuse queued starts, mark every service stopped',
    kind: 'command',
    params: object({}),
    errors: [],
  }),
  shutdown: method<ShutdownResult>()({
    summary: 'stop every service, then the daemon; the services that were running stay wanted, and the next daemon starts them again',
    kind: 'command',
    params: object({}),
    errors: [],
  }),
} as const;

export type MethodName = keyof typeof methods;
/** What a client sends. */
export type ParamsOf<M extends MethodName> = InputOf<(typeof methods)[M]['params']>;
/** What a handler receives, checked. */
export type CheckedParamsOf<M extends MethodName> = Infer<(typeof methods)[M]['params']>;
export type ResultOf<M extends MethodName> = (typeof methods)[M] extends MethodSpec<unknown, unknown, infer R, unknown> ? R : never;
/** What its progress frames hold (never: it sends none). */
export type ProgressOf<M extends MethodName> = (typeof methods)[M] extends MethodSpec<unknown, unknown, unknown, infer G> ? G : never;

export const methodNames = Object.keys(methods) as MethodName[];
