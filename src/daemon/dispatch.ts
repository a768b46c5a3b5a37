/**
 * The daemon's methods on the wire: params are checked against the method
 * table before a handler runs, and a client's calls are typed by it.
 */
import { methodNames, methods, type CheckedParamsOf, type MethodName, type ParamsOf, type ProgressOf, type ResultOf } from './methods.js';
import type { ProtocolClient } from './protocol-client.js';
import type { HandlerContext, ProtocolHandler, ProtocolHandlers } from './protocol.js';

/** A handler's context, its progress typed by the method table. */
export interface MethodContext<M extends MethodName> extends Omit<HandlerContext, 'progress'> {
  readonly progress: (value: ProgressOf<M>) => void;
}

export type MethodHandlers = { readonly [M in MethodName]: (params: CheckedParamsOf<M>, context: MethodContext<M>) => Promise<ResultOf<M>> };

/** Protocol handlers that check each request's params (SPEC_OPTION_INVALID naming `params.FIELD`) before the method's handler sees them. */
export function protocolHandlersOf(handlers: MethodHandlers): ProtocolHandlers {
  const entries = methodNames.map((name): [MethodName, ProtocolHandler] => {
    const handler = handlers[name] as (params: unknown, context: HandlerContext) => Promise<unknown>;
    return [name, async (raw, context) => handler(methods[name].params.parse(raw, 'params'), context)];
  });
  return Object.fromEntries(entries);
}

/** Queries answer at once; commands may wait for readiness, the queue and stop timeouts. */
const QUERY_TIMEOUT_MS = 30_000;
const COMMAND_TIMEOUT_MS = 24 * 3_600_000;

export interface CallOptions<M extends MethodName> {
  readonly timeoutMs?: number;
  /** Hears the method's progress frames, before the result. */
  readonly onProgress?: ((progress: ProgressOf<M>) => void) | undefined;
}

export interface DaemonClient {
  call<M extends MethodName>(method: M, params: ParamsOf<M>, options?: CallOptions<M>): Promise<ResultOf<M>>;
  close(): Promise<void>;
}

export function daemonClientOf(client: ProtocolClient): DaemonClient {
  return {
    async call(method, params, options = {}) {
      const timeoutMs = options.timeoutMs ?? (methods[method].kind === 'query' ? QUERY_TIMEOUT_MS : COMMAND_TIMEOUT_MS);
      // The daemon answers each method with its result type (the same table types both ends).
      // Progress frames hold the method's progress type, by the same table.
      const onProgress = options.onProgress as ((progress: unknown) => void) | undefined;
      return (await client.request(method, params, { timeoutMs, onProgress })) as ResultOf<typeof method>;
    },
    close: () => client.close(),
  };
}
