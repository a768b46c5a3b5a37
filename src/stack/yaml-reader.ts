/**
 * Reading a YAML (or JSON) document node by node, with the line of each node
 * for the errors: CONFIG_INVALID naming file:line, the field path and the fix.
 * The stack reader (config.ts) builds on this.
 */
import { isAlias, isMap, isNode, isScalar, isSeq, type Document, type LineCounter, type Node as YamlNode, type YAMLMap, type YAMLSeq } from 'yaml';
import { TendError } from '../core/errors.js';
import { readDuration } from '../service/duration.js';
import type * as rules from '../service/rules.js';
import { closest } from '../spawn/normalize-spec.js';

export type { YamlNode };

export function configError(file: string, line: number, field: string | undefined, message: string, fix: string): TendError {
  return new TendError('CONFIG_INVALID', field === undefined ? { file, line, message, fix } : { file, line, field, message, fix });
}

export function describe(node: YamlNode | undefined): string {
  if (node === undefined) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isAlias(node)) return `the alias *${node.source}, which names no anchor`;
  if (isScalar(node)) {
    const value = node.value;
    if (value === null) return 'nothing';
    if (typeof value === 'string') return JSON.stringify(value);
    if (typeof value === 'number' || typeof value === 'boolean') return `${value} (${typeof value})`;
  }
  return 'a value of another type';
}

export interface Entry {
  readonly key: string;
  readonly keyLine: number;
  readonly value: YamlNode | undefined;
}

export function asNode(value: unknown): YamlNode | undefined {
  return isNode(value) ? value : undefined;
}

export abstract class YamlReader {
  constructor(
    protected readonly file: string,
    protected readonly dir: string,
    protected readonly doc: Document.Parsed,
    protected readonly lines: LineCounter,
  ) {}

  // Fields are checked in a fixed order (command first, then the order of
  // readService's object), so a file with several problems always reports the same one.
  protected optional<T>(entry: Entry | undefined, read: (entry: Entry) => T): T | undefined {
    return entry === undefined ? undefined : read(entry);
  }

  protected readStringList(entry: Entry, path: string): string[] {
    const node = entry.value;
    if (!isSeq(node)) {
      throw this.fail(node, entry.keyLine, path, `expected a list of strings, got ${describe(node)}`, `Write a list, e.g. \`${path.split('.').pop() ?? ''}: [--port, "3000"]\`.`);
    }
    return this.items(node).map((item, index) => {
      const value = isScalar(item) ? item.value : undefined;
      if (typeof value !== 'string' || value.includes('\0')) {
        throw this.fail(item, entry.keyLine, `${path}[${index}]`, `expected a string, got ${describe(item)}`, 'Quote the item (numbers and booleans must be written as "3000", "true").');
      }
      return value;
    });
  }

  /** A field that obeys one of the service rules: the rule's words, framed as file:line. */
  protected readRule<T>(rule: rules.Rule<T>, node: YamlNode | undefined, fallbackLine: number, path: string): T {
    const value = isScalar(node) ? node.value : undefined;
    const read = rule.read(value);
    if (read === undefined) throw this.fail(node, fallbackLine, path, `expected ${rule.expected}, got ${describe(node)}`, rule.fix(value));
    return read;
  }

  protected readBoolean(entry: Entry, path: string): boolean {
    const value = isScalar(entry.value) ? entry.value.value : undefined;
    if (typeof value !== 'boolean') {
      throw this.fail(entry.value, entry.keyLine, path, `expected true or false, got ${describe(entry.value)}`, 'Write true or false without quotes.');
    }
    return value;
  }

  /** "500ms", "5s", "2m", "1h" (decimals allowed: "1.5s") or a whole number of milliseconds. */
  protected readDuration(node: YamlNode | undefined, fallbackLine: number, path: string): number {
    const reading = readDuration(isScalar(node) ? node.value : undefined);
    if (!reading.ok) {
      const problem = isScalar(node) ? reading.problem : `got ${describe(node)}`;
      throw this.fail(node, fallbackLine, path, `expected a duration such as 500ms, 10s or 2m: ${problem}`, reading.fix);
    }
    return reading.ms;
  }

  /** The entries of a mapping by key, refusing keys not in `known` (with a did-you-mean). */
  protected entries<K extends string>(map: YAMLMap, parent: string | undefined, known: readonly K[]): Map<K, Entry> {
    const result = new Map<K, Entry>();
    const fallback = this.lineOf(map, 1);
    for (const pair of map.items) {
      const keyNode = this.deref(asNode(pair.key));
      const keyLine = this.lineOf(keyNode, fallback);
      const key = isScalar(keyNode) ? keyNode.value : undefined;
      const path = parent === undefined ? String(key) : `${parent}.${String(key)}`;
      if (typeof key !== 'string' || !(known as readonly string[]).includes(key)) {
        const suggestion = typeof key === 'string' ? closest(key, known) : undefined;
        throw configError(
          this.file,
          keyLine,
          path,
          `unknown field ${describe(keyNode)}`,
          `${suggestion === undefined ? 'Remove it.' : `Did you mean \`${suggestion}\`?`} Known fields here: ${known.join(', ')}.`,
        );
      }
      result.set(key as K, { key, keyLine, value: this.deref(asNode(pair.value)) });
    }
    return result;
  }

  protected lookup(node: YamlNode | undefined, key: string): YamlNode | undefined {
    if (!isMap(node)) return undefined;
    const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
    return this.deref(asNode(pair?.value));
  }

  protected items(seq: YAMLSeq): (YamlNode | undefined)[] {
    return seq.items.map((item) => this.deref(asNode(item)));
  }

  /** An alias stands for the node its anchor names; an alias to nothing is left as is and fails as a wrong type. */
  protected deref(node: YamlNode | undefined): YamlNode | undefined {
    return isAlias(node) ? (node.resolve(this.doc) ?? node) : node;
  }

  protected lineOf(node: YamlNode | undefined, fallback: number): number {
    const start = node?.range?.[0];
    return start === undefined ? fallback : this.lines.linePos(start).line;
  }

  /** An error at `node`'s line, or at `fallbackLine` (the key's) when the value is absent. */
  protected fail(node: YamlNode | undefined, fallbackLine: number, field: string | undefined, message: string, fix: string): TendError {
    return configError(this.file, this.lineOf(node, fallbackLine), field, message, fix);
  }
}
