/**
 * Durations, one rule wherever a service is defined (tend.yaml, the command
 * line, the wire): a number with a unit. A bare number is refused, in the file
 * as on the command line: `stop_timeout: 10` would otherwise mean 10 ms to
 * one reader and 10 s to another.
 */

/** The longest duration a Node timer can wait (about 24.8 days). */
export const MAX_DURATION_MS = 2_147_483_647;

const units = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

export type DurationReading = { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly problem: string; readonly fix: string };

/** Reads "500ms", "5s", "1.5m", "2h" into milliseconds; says what is wrong with anything else, and how to write it. */
export function readDuration(value: unknown): DurationReading {
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : undefined;
  // As it was given: "10" from a command line, 10 from a YAML number.
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  if (text !== undefined && /^\d+(\.\d+)?$/.test(text)) {
    return { ok: false, problem: `${shown} has no unit`, fix: `Write it with a unit: ${text}s for seconds, ${text}ms for milliseconds.` };
  }
  const match = text === undefined ? null : /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (match === null) return { ok: false, problem: `${shown} is not a duration`, fix: 'Write a number with a unit: 500ms, 10s, 2m or 1h.' };
  const ms = Math.round(Number(match[1]) * units[match[2] as keyof typeof units]);
  if (ms > MAX_DURATION_MS) return { ok: false, problem: `${text} is too long`, fix: 'Keep it under 24 days (596h).' };
  return { ok: true, ms };
}
