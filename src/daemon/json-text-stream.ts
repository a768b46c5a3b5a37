/**
 * JSON.stringify's output, produced a slice at a time. A large result is
 * walked lazily, so its text never exists as one string: the daemon holds
 * one slice of it at a time, however many services `ps` lists.
 */

type Container =
  | { readonly kind: 'array'; readonly value: readonly unknown[]; next: number }
  | { readonly kind: 'object'; readonly value: Record<string, unknown>; readonly keys: string[]; next: number; first: boolean };

/** What JSON.stringify leaves out of an object and writes as null in an array. */
function isUnwritable(value: unknown): boolean {
  return value === undefined || typeof value === 'function' || typeof value === 'symbol';
}

function applyToJSON(value: unknown, key: string): unknown {
  if ((typeof value === 'object' && value !== null) || typeof value === 'bigint') {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return (toJSON as (key: string) => unknown).call(value, key);
  }
  return value;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

export class JsonTextStream {
  readonly #stack: Container[] = [];
  /** Containers being written: meeting one again is a cycle, as in JSON.stringify. */
  readonly #open = new Set<object>();
  #buffer = '';
  #root: { value: unknown } | undefined;

  constructor(value: unknown) {
    this.#root = { value };
  }

  /** Whether every slice has been read. */
  get done(): boolean {
    return this.#root === undefined && this.#stack.length === 0 && this.#buffer === '';
  }

  /**
   * The next slice of the text, at most `maxChars` UTF-16 units long (never
   * splitting a surrogate pair, so `maxChars` must be at least 2), or
   * undefined once all was read. Throws what JSON.stringify would throw (a
   * cycle, a BigInt).
   */
  read(maxChars: number): string | undefined {
    while (this.#buffer.length < maxChars && this.#step());
    if (this.#buffer === '') return undefined;
    let end = Math.min(maxChars, this.#buffer.length);
    if (end < this.#buffer.length && isHighSurrogate(this.#buffer.charCodeAt(end - 1))) end--;
    const slice = this.#buffer.slice(0, end);
    this.#buffer = this.#buffer.slice(end);
    return slice;
  }

  /** Writes the next token(s) into the buffer; false when nothing is left to write. */
  #step(): boolean {
    const root = this.#root;
    if (root) {
      this.#root = undefined;
      const value = applyToJSON(root.value, '');
      if (isUnwritable(value)) this.#buffer += 'null';
      else this.#write(value);
      return true;
    }
    const top = this.#stack[this.#stack.length - 1];
    if (!top) return false;
    if (top.kind === 'array') {
      if (top.next < top.value.length) {
        const index = top.next++;
        if (index > 0) this.#buffer += ',';
        const value = applyToJSON(top.value[index], String(index));
        if (isUnwritable(value)) this.#buffer += 'null';
        else this.#write(value);
        return true;
      }
      this.#buffer += ']';
    } else {
      while (top.next < top.keys.length) {
        const key = top.keys[top.next++] as string;
        const value = applyToJSON(top.value[key], key);
        if (isUnwritable(value)) continue;
        this.#buffer += `${top.first ? '' : ','}${JSON.stringify(key)}:`;
        top.first = false;
        this.#write(value);
        return true;
      }
      this.#buffer += '}';
    }
    this.#stack.pop();
    this.#open.delete(top.value);
    return true;
  }

  /** Writes a primitive, or opens a container whose members later steps write. */
  #write(value: unknown): void {
    if (typeof value !== 'object' || value === null || value instanceof Number || value instanceof String || value instanceof Boolean) {
      // Primitives (and boxed ones) are small, or a single string: JSON.stringify writes them exactly; it throws on a BigInt.
      this.#buffer += JSON.stringify(value);
      return;
    }
    if (this.#open.has(value)) throw new TypeError('Converting circular structure to JSON');
    this.#open.add(value);
    if (Array.isArray(value)) {
      this.#buffer += '[';
      this.#stack.push({ kind: 'array', value: value as unknown[], next: 0 });
    } else {
      this.#buffer += '{';
      const record = value as Record<string, unknown>;
      this.#stack.push({ kind: 'object', value: record, keys: Object.keys(record), next: 0, first: true });
    }
  }
}
