/**
 * Small runtime schemas that check a value from outside (the daemon's socket,
 * the HTTP API, a file on disk), give its TypeScript type, and describe
 * themselves as JSON Schema for the API's documents. A value that does not fit
 * is refused with SPEC_OPTION_INVALID naming the path, what was expected and
 * what came.
 *
 * Deliberately tiny: the CLI loads this on every call, so no schema library.
 */
import { TendError } from './errors.js';

export type JsonSchema = Readonly<Record<string, unknown>>;

/** `T` is what parse() returns; `I` is what a sender writes, when it differs (a definition travels in its JSON form). */
export interface Schema<T, I = T> {
  /** Checks `value` and returns it typed (objects are rebuilt with known keys only); `path` names it in errors. */
  parse(value: unknown, path: string): T;
  readonly json: JsonSchema;
  /** In an object: the key may be missing (or null, which reads as missing). */
  readonly optional?: boolean;
  /** The sender's type; never set at run time. */
  readonly input?: I;
}

export type Infer<S> = S extends Schema<infer T, unknown> ? T : never;
export type InputOf<S> = S extends Schema<unknown, infer I> ? I : never;

function refuse(path: string, expected: string, value: unknown): never {
  throw new TendError('SPEC_OPTION_INVALID', { field: path, expected, value });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function define<T, I = T>(json: JsonSchema, expected: string, check: (value: unknown, path: string) => T | typeof NO): Schema<T, I> {
  return {
    json,
    parse(value, path) {
      const result = check(value, path);
      return result === NO ? refuse(path, expected, value) : result;
    },
  };
}

const NO: unique symbol = Symbol('no');

export function string(options: { pattern?: RegExp; expected?: string; minLength?: number } = {}): Schema<string> {
  const expected = options.expected ?? 'a string';
  const json = { type: 'string', ...(options.pattern ? { pattern: options.pattern.source } : {}), ...(options.minLength ? { minLength: options.minLength } : {}) };
  return define(json, expected, (value) => {
    if (typeof value !== 'string' || value.includes('\0')) return NO;
    if (options.minLength !== undefined && value.length < options.minLength) return NO;
    if (options.pattern && !options.pattern.test(value)) return NO;
    return value;
  });
}

export function integer(options: { min?: number; max?: number; expected?: string } = {}): Schema<number> {
  const min = options.min ?? Number.MIN_SAFE_INTEGER;
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  const expected = options.expected ?? `an integer from ${min} to ${max}`;
  return define({ type: 'integer', minimum: min, maximum: max }, expected, (value) =>
    typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max ? value : NO,
  );
}

export function boolean(): Schema<boolean> {
  return define({ type: 'boolean' }, 'true or false', (value) => (typeof value === 'boolean' ? value : NO));
}

export function literal<const V extends readonly (string | number | boolean)[]>(...values: V): Schema<V[number]> {
  return define({ enum: values }, `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`, (value) =>
    values.includes(value as V[number]) ? (value as V[number]) : NO,
  );
}

export function array<T, I>(item: Schema<T, I>, options: { maxItems?: number } = {}): Schema<T[], readonly I[]> {
  const json = { type: 'array', items: item.json, ...(options.maxItems === undefined ? {} : { maxItems: options.maxItems }) };
  const expected = `a list${options.maxItems === undefined ? '' : ` of at most ${options.maxItems} items`}`;
  return define<T[], readonly I[]>(json, expected, (value, path) => {
    if (!Array.isArray(value) || (options.maxItems !== undefined && value.length > options.maxItems)) return NO;
    const items: T[] = [];
    for (let index = 0; index < value.length; index++) items.push(item.parse(value[index], `${path}[${index}]`));
    return items;
  });
}

/** An object of any keys, each value of one schema (an environment). */
export function record<T>(item: Schema<T>): Schema<Record<string, T>> {
  return define({ type: 'object', additionalProperties: item.json }, 'an object', (value, path) => {
    if (!isPlainObject(value)) return NO;
    const out: Record<string, T> = {};
    for (const [key, v] of Object.entries(value)) {
      if (key.includes('\0')) refuse(path, 'keys without NUL bytes', key);
      out[key] = item.parse(v, `${path}.${key}`);
    }
    return out;
  });
}

export function optional<T, I>(schema: Schema<T, I>): Schema<T | undefined, I | undefined> & { readonly optional: true } {
  return {
    optional: true,
    json: schema.json,
    parse: (value, path) => (value === undefined || value === null ? undefined : schema.parse(value, path)),
  };
}

/** Anything: for values checked elsewhere (a service definition, checked by the service schema). */
export function unknown(description = 'any JSON value'): Schema<unknown> {
  return { json: { description }, parse: (value) => value };
}

type Shape = Readonly<Record<string, Schema<unknown, unknown>>>;
type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends { readonly optional: true } ? K : never }[keyof S];
type RequiredKeys<S extends Shape> = Exclude<keyof S, OptionalKeys<S>>;
export type ObjectOf<S extends Shape> = { -readonly [K in RequiredKeys<S>]: Infer<S[K]> } & { -readonly [K in OptionalKeys<S>]?: Infer<S[K]> };
export type ObjectInput<S extends Shape> = { -readonly [K in RequiredKeys<S>]: InputOf<S[K]> } & { -readonly [K in OptionalKeys<S>]?: InputOf<S[K]> };

/**
 * An object with these keys. Unknown keys are refused (a typo must not be
 * ignored), so a newer client's new field fails loudly on an older daemon.
 */
export function object<S extends Shape>(shape: S): Schema<ObjectOf<S>, ObjectInput<S>> {
  const keys = Object.keys(shape);
  const required = keys.filter((k) => !(shape[k] as Schema<unknown, unknown>).optional);
  const json = {
    type: 'object',
    properties: Object.fromEntries(keys.map((k) => [k, (shape[k] as Schema<unknown, unknown>).json])),
    ...(required.length > 0 ? { required } : {}),
    additionalProperties: false,
  };
  return define<ObjectOf<S>, ObjectInput<S>>(json, `an object with ${keys.length === 0 ? 'no keys' : `the keys ${keys.join(', ')}`}`, (value, path) => {
    if (!isPlainObject(value)) return NO;
    for (const key of Object.keys(value)) {
      if (!Object.hasOwn(shape, key)) refuse(`${path}.${key}`, `no such key (known: ${keys.join(', ') || 'none'})`, value[key]);
    }
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      const parsed = (shape[key] as Schema<unknown, unknown>).parse(value[key], `${path}.${key}`);
      if (parsed !== undefined) out[key] = parsed;
    }
    return out as ObjectOf<S>;
  });
}
