/**
 * The daemon's wire protocol: newline-delimited JSON over a Unix socket in the
 * state directory, independent of what the methods do.
 *
 *   request   { "v": 3, "id": 7, "method": "status", "params": {} }
 *   progress  { "v": 3, "id": 7, "progress": ... }                        (none or more, before the response)
 *   response  { "v": 3, "id": 7, "ok": true, "result": ... }
 *             { "v": 3, "id": 7, "ok": false, "error": { "code", "message", "details"? } }
 *   or, for a result whose JSON text does not fit one line:
 *             { "v": 3, "id": 7, "part": "<a slice of the result's JSON text>" }   (one or more)
 *             { "v": 3, "id": 7, "ok": true, "parts": <how many> }
 *
 * A progress frame tells the client how a request that waits is getting on
 * (a start queued under the limit: its place in line); what it holds is the
 * method's progress type in the method table. Progress is advice: a frame
 * that does not fit one line is dropped, and none follows the response.
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
 * Versions: version 2 added the part frames, version 3 the progress frames.
 * A request carries the version its client speaks, and the daemon answers in
 * it: a version 1 or 2 request gets no progress frames (its client would not
 * know them), and a version 1 request gets its result on one line, as version
 * 1 did; a result too large for one line is refused with PROTOCOL_VERSION (a
 * version 1 client cannot read parts). A client talking to a daemon older
 * than itself gets PROTOCOL_VERSION from it.
 *
 * Codes a response may carry besides TendError codes: PROTOCOL_ERROR,
 * PROTOCOL_VERSION, UNKNOWN_METHOD, INTERNAL. Codes raised locally (never
 * sent): DAEMON_NOT_RUNNING, PROTOCOL_TIMEOUT, PROTOCOL_CONNECTION_CLOSED,
 * PROTOCOL_ADDRESS_IN_USE, and PROTOCOL_ERROR for a request too long to send
 * or a response too large to take.
 */
import { TendError, type ErrorBody } from '../core/errors.js';

export const PROTOCOL_VERSION = 3;

/** The versions a daemon answers: version 1 clients get every result on one line, or PROTOCOL_VERSION; versions 1 and 2 get no progress. */
export const SUPPORTED_VERSIONS: readonly number[] = [1, 2, 3];

/** The first version whose clients read progress frames. */
export const PROGRESS_VERSION = 3;

/** The most a client takes in one response (the sum of its parts), in bytes. */
export const MAX_RESULT_BYTES = 256 * 1024 * 1024;

/** The longest line either side accepts, in bytes, without its newline. */
export const MAX_LINE_BYTES = 1024 * 1024;

export const DEFAULT_PROBE_TIMEOUT_MS = 1_000;

export interface ProtocolRequest {
  readonly v: number;
  readonly id: number;
  readonly method: string;
  readonly params: object;
}

export type ProtocolErrorBody = ErrorBody;

/** The wire form of a protocol error. */
export function protocolError(problem: string): ErrorBody {
  return new TendError('PROTOCOL_ERROR', { problem }).toBody();
}

export type ProtocolResponse =
  | { readonly v: number; readonly id: number | null; readonly ok: true; readonly result: unknown }
  | { readonly v: number; readonly id: number | null; readonly ok: false; readonly error: ProtocolErrorBody };

export interface HandlerContext {
  /** Aborts when the server closes or the requesting client disconnects. */
  readonly signal: AbortSignal;
  /**
   * Sends a progress frame before the response, if the client speaks a
   * version that knows them (else nothing is sent). Never throws; a call
   * after the response was sent, or once the client is gone, does nothing.
   */
  readonly progress: (value: unknown) => void;
}

export type ProtocolHandler = (params: unknown, context: HandlerContext) => Promise<unknown>;

export type ProtocolHandlers = Readonly<Record<string, ProtocolHandler>>;

// ---------------------------------------------------------------------------
// Framing

type LineEvent = { readonly kind: 'line'; readonly text: string } | { readonly kind: 'oversize'; readonly bytes: number };

/**
 * Splits a byte stream into lines of at most `maxBytes`. A longer line is
 * reported once, as soon as it passes the limit, and its remaining bytes are
 * dropped up to the next newline so the stream resynchronises there.
 */
export class LineSplitter {
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

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isRequestId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
