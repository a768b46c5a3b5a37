/**
 * The daemon's methods on the wire: params are checked against the method
 * table before a handler runs, and a client's calls are typed by it.
 */
import { methodNames, methods, type CheckedParamsOf, type MethodName, type ParamsOf, type ResultOf } from './methods.js';
import type { ProtocolClient } from './protocol-client.js';
import type { HandlerContext, ProtocolHandler, ProtocolHandlers } from './protocol.js';

export type MethodHandlers = { readonly [M in MethodName]: (params: CheckedParamsOf<M>, context: HandlerContext) => Promise<ResultOf<M>> };

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

export interface DaemonClient {
  call<M extends MethodName>(method: M, params: ParamsOf<M>, options?: { readonly timeoutMs?: number }): Promise<ResultOf<M>>;
  close(): Promise<void>;
}

export function daemonClientOf(client: ProtocolClient): DaemonClient {
  return {
    async call(method, params, options = {}) {
      const timeoutMs = options.timeoutMs ?? (methods[method].kind === 'query' ? QUERY_TIMEOUT_MS : COMMAND_TIMEOUT_MS);
      // The daemon answers each method with its result type (the same table types both ends).
      return (await client.request(method, params, { timeoutMs })) as ResultOf<typeof method>;
    },
    close: () => client.close(),
  };
}
