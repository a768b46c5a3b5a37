/**
 * The supervisor's stack file (`tend.yaml` or `tend.json`): parsed with the
 * `yaml` package for both formats (JSON is YAML 1.2), so every error points at
 * the line of the node that is wrong. Validation stops at the first problem and
 * throws CONFIG_INVALID naming file:line, the field path and the fix.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { LineCounter, isAlias, isMap, isNode, isScalar, isSeq, parseDocument, type Document, type Node as YamlNode, type YAMLMap, type YAMLSeq } from 'yaml';
import { TendError, errnoOf } from '../core/errors.js';
import type { SignalName } from '../core/signals.js';
import { MARKER_VARIABLE, type StrategyChoice } from '../core/types.js';
import { DEFAULT_STOP_TIMEOUT_MS, closest } from '../spawn/normalize-spec.js';
import { readDuration } from '../service/duration.js';
import * as rules from '../service/rules.js';

export * from '../service/definition.js';
import { DEFAULT_READY_TIMEOUT_MS, DEFAULT_RESTART_BACKOFF_MS, DEFAULT_RESTART_MAX_BACKOFF_MS, type ReadyCheck, type RestartLimit, type RestartPolicy, type ServiceConfig, type StackConfig, type UnresponsiveConfig } from '../service/definition.js';


const topLevelFields = ['services'] as const;
const serviceFields = [
  'command',
  'args',
  'cwd',
  'env',
  'env_file',
  'inherit_env',
  'log',
  'restart',
  'restart_limit',
  'ready',
  'ports',
  'depends_on',
  'stop_signal',
  'stop_timeout',
  'strategy',
  'limit_exempt',
  'unresponsive',
] as const;
const unresponsiveFields = ['cpu_window', 'probe_interval', 'probe_failures', 'restart'] as const;
export const DEFAULT_PROBE_FAILURES = 3;
const restartLimitFields = ['max', 'backoff', 'max_backoff'] as const;
const readyFields = ['tcp', 'http', 'log', 'timeout'] as const;

/** Reads and validates a stack file; relative paths in it are resolved against its directory. */
export async function loadConfig(path: string): Promise<StackConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new TendError('CONFIG_INVALID', {
      file: path,
      line: 1,
      message: `cannot read the config file (${errnoOf(error) ?? String(error)})`,
      fix: 'Pass the path of an existing, readable tend.yaml or tend.json.',
    }, { cause: error });
  }
  return parseConfig(text, path);
}

/**
 * Validates the text of a stack file named `file` (used for messages and to
 * resolve relative paths). Reads `env_file`s synchronously; starts nothing.
 */
export function parseConfig(text: string, file: string): StackConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  const reader = new ConfigReader(file, resolve(dirname(file)), doc, lines);
  return reader.readStack();
}

/** A problem found in the file: thrown as CONFIG_INVALID. */
function configError(file: string, line: number, field: string | undefined, message: string, fix: string): TendError {
  return new TendError('CONFIG_INVALID', field === undefined ? { file, line, message, fix } : { file, line, field, message, fix });
}

/** A YAML value in the words a config author uses. */
function describe(node: YamlNode | undefined): string {
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

interface Entry {
  readonly key: string;
  readonly keyLine: number;
  readonly value: YamlNode | undefined;
}

/** Names a service depends on, with the line of each, for the checks that need every service first. */
interface Dependency {
  readonly name: string;
  readonly line: number;
}

class ConfigReader {
  constructor(
    private readonly file: string,
    private readonly dir: string,
    private readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
  ) {}

  readStack(): StackConfig {
    const syntax = this.doc.errors[0];
    if (syntax !== undefined) {
      const line = syntax.linePos?.[0].line ?? 1;
      const message = (syntax.message.split('\n')[0] ?? syntax.message).replace(/ at line \d+, column \d+:?$/, '');
      if (syntax.code === 'MULTIPLE_DOCS') {
        throw configError(this.file, line, undefined, 'the file holds more than one YAML document', 'Keep one document: remove the `---` line and put every service under one `services:`.');
      }
      const fix =
        syntax.code === 'DUPLICATE_KEY'
          ? 'Remove or rename one of the duplicate keys.'
          : `Correct the ${this.file.endsWith('.json') ? 'JSON' : 'YAML'} syntax on that line (or the line before it).`;
      throw configError(this.file, line, undefined, message.replace(/\.$/, ''), fix);
    }

    const root = this.deref(this.doc.contents ?? undefined);
    if (!isMap(root)) {
      throw this.fail(root, 1, undefined, `expected a mapping with a \`services:\` key, got ${describe(root)}`, 'Start the file with `services:` and one entry per service.');
    }
    const top = this.entries(root, undefined, topLevelFields);
    const servicesEntry = top.get('services');
    if (servicesEntry === undefined) {
      throw this.fail(root, 1, 'services', 'the `services:` key is missing', 'Add `services:` with one entry per service, e.g. `services: { web: { command: node, args: [server.js] } }`.');
    }
    const servicesNode = servicesEntry.value;
    if (!isMap(servicesNode)) {
      throw this.fail(servicesNode, servicesEntry.keyLine, 'services', `expected a mapping of service names to services, got ${describe(servicesNode)}`, 'Give each service as `name: { command: ... }` under `services:`.');
    }
    if (servicesNode.items.length === 0) {
      throw this.fail(servicesNode, servicesEntry.keyLine, 'services', 'no services are declared', 'Add at least one service under `services:`.');
    }

    const services: ServiceConfig[] = [];
    const dependencies = new Map<string, Dependency[]>();
    for (const pair of servicesNode.items) {
      const keyNode = this.deref(asNode(pair.key));
      const keyLine = this.lineOf(keyNode, servicesEntry.keyLine);
      const raw = isScalar(keyNode) ? keyNode.value : undefined;
      const name = rules.serviceName.read(raw);
      if (name === undefined) {
        throw configError(this.file, keyLine, `services.${String(raw)}`, `expected ${rules.serviceName.expected}, got ${describe(keyNode)}`, rules.serviceName.fix(raw));
      }
      const deps: Dependency[] = [];
      services.push(this.readService(name, keyLine, this.deref(asNode(pair.value)), deps));
      dependencies.set(name, deps);
    }

    this.checkDependencies(services, dependencies);
    this.checkPortConflicts(servicesNode, services);
    return { file: this.file, dir: this.dir, services };
  }

  private readService(name: string, keyLine: number, node: YamlNode | undefined, deps: Dependency[]): ServiceConfig {
    const path = `services.${name}`;
    if (!isMap(node)) {
      throw this.fail(node, keyLine, path, `expected a mapping of service fields, got ${describe(node)}`, 'Give the service at least `command:`, e.g. `web: { command: node, args: [server.js] }`.');
    }
    const fields = this.entries(node, path, serviceFields);
    const field = (key: (typeof serviceFields)[number]): Entry | undefined => fields.get(key);

    const commandEntry = field('command');
    if (commandEntry === undefined) {
      throw configError(this.file, keyLine, `${path}.command`, `service "${name}" has no \`command\``, 'Add `command:` naming the program to run, e.g. `command: node` with `args: [server.js]`.');
    }
    const commandList = this.readCommand(commandEntry, `${path}.command`);
    const argsEntry = field('args');
    if (argsEntry !== undefined && commandList.length > 1) {
      throw this.fail(argsEntry.value, argsEntry.keyLine, `${path}.args`, 'arguments are given both in the `command` list and in `args`', 'Put the arguments in one place: either `command: [prog, arg, ...]` or `command: prog` with `args:`.');
    }
    const args = argsEntry === undefined ? commandList.slice(1) : this.readStringList(argsEntry, `${path}.args`);
    const cwdEntry = field('cwd');
    const logEntry = field('log');
    const envFileEntry = field('env_file');
    const envEntry = field('env');
    const env: Record<string, string> = {};
    if (envFileEntry !== undefined) Object.assign(env, this.readEnvFiles(envFileEntry, `${path}.env_file`));
    if (envEntry !== undefined) Object.assign(env, this.readEnv(envEntry, `${path}.env`));

    for (const dep of this.optional(field('depends_on'), (e) => this.readDependsOn(e, `${path}.depends_on`)) ?? []) deps.push(dep);

    return {
      name,
      command: commandList[0] as string,
      args,
      cwd: cwdEntry === undefined ? this.dir : resolve(this.dir, this.readPath(cwdEntry, `${path}.cwd`, 'a directory')),
      env,
      inheritEnv: this.optional(field('inherit_env'), (e) => this.readInheritEnv(e, `${path}.inherit_env`)) ?? false,
      log: logEntry === undefined ? undefined : resolve(this.dir, this.readPath(logEntry, `${path}.log`, 'a log file')),
      restart: this.optional(field('restart'), (e) => this.readRestart(e, `${path}.restart`)) ?? 'on-failure',
      restartLimit: this.optional(field('restart_limit'), (e) => this.readRestartLimit(e, `${path}.restart_limit`)),
      ready: this.optional(field('ready'), (e) => this.readReady(e, `${path}.ready`)),
      ports: this.optional(field('ports'), (e) => this.readPorts(e, `${path}.ports`)) ?? [],
      dependsOn: deps.map((d) => d.name),
      stopSignal: this.optional(field('stop_signal'), (e) => this.readSignal(e, `${path}.stop_signal`)) ?? 'SIGTERM',
      stopTimeoutMs: this.optional(field('stop_timeout'), (e) => this.readDuration(e.value, e.keyLine, `${path}.stop_timeout`)) ?? DEFAULT_STOP_TIMEOUT_MS,
      strategy: this.optional(field('strategy'), (e) => this.readStrategy(e, `${path}.strategy`)) ?? 'auto',
      exemptFromLimit: this.optional(field('limit_exempt'), (e) => this.readBoolean(e, `${path}.limit_exempt`)) ?? false,
      unresponsive: this.optional(field('unresponsive'), (e) => this.readUnresponsive(e, `${path}.unresponsive`, field('ready') !== undefined)),
    };
  }

  private readUnresponsive(entry: Entry, path: string, hasReady: boolean): UnresponsiveConfig {
    const node = entry.value;
    const example = 'Write e.g. `unresponsive: { cpu_window: 30s, probe_interval: 10s, probe_failures: 3, restart: true }`.';
    if (!isMap(node)) throw this.fail(node, entry.keyLine, path, `expected a mapping, got ${describe(node)}`, example);
    const fields = this.entries(node, path, unresponsiveFields);
    const cpu = fields.get('cpu_window');
    const interval = fields.get('probe_interval');
    const failures = fields.get('probe_failures');
    const restart = fields.get('restart');
    if (cpu === undefined && interval === undefined) {
      throw configError(this.file, entry.keyLine, path, 'neither `cpu_window` nor `probe_interval` is given, so nothing could ever make the service unresponsive', example);
    }
    if (interval !== undefined && !hasReady) {
      throw this.fail(interval.value, interval.keyLine, `${path}.probe_interval`, 're-running the readiness check needs a `ready:` check, and the service has none', 'Add `ready:` to the service, or remove `probe_interval`.');
    }
    let probeFailures = DEFAULT_PROBE_FAILURES;
    if (failures !== undefined) {
      const value = isScalar(failures.value) ? failures.value.value : undefined;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
        throw this.fail(failures.value, failures.keyLine, `${path}.probe_failures`, `expected a whole number of failures, at least 1, got ${describe(failures.value)}`, 'Write e.g. `probe_failures: 3`.');
      }
      probeFailures = value;
    }
    return {
      cpuWindowMs: cpu === undefined ? undefined : this.readDuration(cpu.value, cpu.keyLine, `${path}.cpu_window`),
      probeIntervalMs: interval === undefined ? undefined : this.readDuration(interval.value, interval.keyLine, `${path}.probe_interval`),
      probeFailures,
      restart: restart === undefined ? false : this.readBoolean(restart, `${path}.restart`),
    };
  }

  // Fields are checked in a fixed order (command first, then the order of
  // readService's object), so a file with several problems always reports the same one.
  private optional<T>(entry: Entry | undefined, read: (entry: Entry) => T): T | undefined {
    return entry === undefined ? undefined : read(entry);
  }

  /** `command: prog` (one program, never split) or `command: [prog, arg, ...]`; returns [prog, ...args]. */
  private readCommand(entry: Entry, path: string): string[] {
    const node = entry.value;
    if (isSeq(node)) {
      const list = this.readStringList(entry, path);
      if (list.length === 0 || (list[0] as string).trim() === '') {
        throw this.fail(node, entry.keyLine, path, 'the command list is empty', 'Name the program first: `command: [node, server.js]`.');
      }
      return list;
    }
    const value = isScalar(node) ? node.value : undefined;
    if (typeof value !== 'string' || value.trim() === '' || value.includes('\0')) {
      throw this.fail(node, entry.keyLine, path, `expected the program to run, got ${describe(node)}`, 'Write `command: node` (and `args: [server.js]`), or `command: [node, server.js]`.');
    }
    if (/\s/.test(value)) {
      throw this.fail(
        node,
        entry.keyLine,
        path,
        `${describe(node)} contains whitespace, but tend runs no shell and does not split commands`,
        `Write the program and its arguments as a list, e.g. \`command: ${JSON.stringify(value.trim().split(/\s+/))}\`; a program path that contains spaces goes in a one-item list.`,
      );
    }
    return [value];
  }

  private readStringList(entry: Entry, path: string): string[] {
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

  private readPath(entry: Entry, path: string, what: string): string {
    const value = isScalar(entry.value) ? entry.value.value : undefined;
    if (typeof value !== 'string' || value === '' || value.includes('\0')) {
      throw this.fail(entry.value, entry.keyLine, path, `expected the path of ${what}, got ${describe(entry.value)}`, `Give a path; a relative one is resolved against ${this.dir}.`);
    }
    return value;
  }

  private readEnv(entry: Entry, path: string): Record<string, string> {
    const node = entry.value;
    if (!isMap(node)) {
      throw this.fail(node, entry.keyLine, path, `expected a mapping of variable names to strings, got ${describe(node)}`, 'Write `env: { NODE_ENV: production, PORT: "3000" }`.');
    }
    const env: Record<string, string> = {};
    for (const pair of node.items) {
      const keyNode = this.deref(asNode(pair.key));
      const keyLine = this.lineOf(keyNode, entry.keyLine);
      const name = isScalar(keyNode) ? keyNode.value : undefined;
      if (typeof name !== 'string') {
        throw configError(this.file, keyLine, `${path}.${String(name)}`, `expected a variable name, got ${describe(keyNode)}`, 'Quote the name.');
      }
      this.checkEnvName(name, keyLine, `${path}.${name}`);
      const valueNode = this.deref(asNode(pair.value));
      const value = isScalar(valueNode) ? valueNode.value : undefined;
      if (typeof value !== 'string' || value.includes('\0')) {
        const fix =
          typeof value === 'number' || typeof value === 'boolean'
            ? `Quote it: \`${name}: "${String(value)}"\` (numbers and booleans must be quoted; tend does not guess how to write them).`
            : `Give a string, e.g. \`${name}: ""\` for an empty value.`;
        throw this.fail(valueNode, keyLine, `${path}.${name}`, `expected a string, got ${describe(valueNode)}`, fix);
      }
      env[name] = value;
    }
    return env;
  }

  private checkEnvName(name: string, line: number, path: string, file = this.file): void {
    if (name === '' || /[=\s\0]/.test(name)) {
      throw configError(file, line, path, `invalid variable name ${JSON.stringify(name)}`, 'Use a name without "=", whitespace or NUL, e.g. DATABASE_URL.');
    }
    if (name === MARKER_VARIABLE) {
      throw configError(file, line, path, `${MARKER_VARIABLE} is reserved: tend sets it on every child to find the whole tree`, `Remove ${MARKER_VARIABLE}.`);
    }
  }

  /** `env_file: app.env` or a list of them, read in order (later files win). */
  private readEnvFiles(entry: Entry, path: string): Record<string, string> {
    const nodes = isSeq(entry.value) ? this.items(entry.value) : [entry.value];
    const env: Record<string, string> = {};
    nodes.forEach((node, index) => {
      const itemPath = isSeq(entry.value) ? `${path}[${index}]` : path;
      const name = isScalar(node) ? node.value : undefined;
      if (typeof name !== 'string' || name === '' || name.includes('\0')) {
        throw this.fail(node, entry.keyLine, itemPath, `expected the path of an env file, got ${describe(node)}`, 'Write `env_file: .env` or a list of paths.');
      }
      Object.assign(env, this.readEnvFile(name, this.lineOf(node, entry.keyLine), itemPath));
    });
    return env;
  }

  private readEnvFile(name: string, line: number, path: string): Record<string, string> {
    const absolute = resolve(this.dir, name);
    // Messages name the file as the user would find it from where they ran tend.
    const shown = isAbsolute(name) ? name : join(dirname(this.file), name);
    let text: string;
    try {
      text = readFileSync(absolute, 'utf8');
    } catch (error) {
      const code = errnoOf(error);
      const message = code === 'ENOENT' ? `env file ${JSON.stringify(name)} does not exist (looked for ${absolute})` : `cannot read env file ${absolute} (${code ?? String(error)})`;
      throw configError(this.file, line, path, message, `Create the file or correct the path; a relative path is resolved against ${this.dir}.`);
    }
    const env: Record<string, string> = {};
    text.split(/\r?\n/).forEach((raw, index) => {
      const lineNo = index + 1;
      const trimmed = raw.trim();
      if (trimmed === '' || trimmed.startsWith('#')) return;
      const assignment = trimmed.replace(/^export\s+/, '');
      const eq = assignment.indexOf('=');
      if (eq <= 0) {
        throw configError(shown, lineNo, path, `expected KEY=VALUE, got ${JSON.stringify(trimmed)}`, 'Write one KEY=VALUE per line; lines starting with # are comments.');
      }
      const key = assignment.slice(0, eq).trim();
      this.checkEnvName(key, lineNo, path, shown);
      env[key] = unquote(assignment.slice(eq + 1).trim());
    });
    return env;
  }

  private readInheritEnv(entry: Entry, path: string): boolean | string[] {
    const node = entry.value;
    if (isScalar(node) && typeof node.value === 'boolean') return node.value;
    if (!isSeq(node)) {
      throw this.fail(node, entry.keyLine, path, `expected true, false or a list of variable names, got ${describe(node)}`, 'Write `inherit_env: [PATH, HOME]` to pass just those, or `inherit_env: true` for everything.');
    }
    const names = this.readStringList(entry, path);
    names.forEach((name, index) => this.checkEnvName(name, this.lineOf(this.items(node)[index], entry.keyLine), `${path}[${index}]`));
    return names;
  }

  private readRestart(entry: Entry, path: string): RestartPolicy {
    return this.readRule(rules.restartPolicy, entry.value, entry.keyLine, path);
  }


  private readRestartLimit(entry: Entry, path: string): RestartLimit {
    const node = entry.value;
    if (!isMap(node)) {
      throw this.fail(node, entry.keyLine, path, `expected a mapping, got ${describe(node)}`, 'Write `restart_limit: { max: 5, backoff: 1s, max_backoff: 30s }`.');
    }
    const fields = this.entries(node, path, restartLimitFields);
    const max = fields.get('max');
    if (max === undefined) {
      throw configError(this.file, entry.keyLine, `${path}.max`, 'the most restarts to allow is missing', 'Add `max:`, e.g. `restart_limit: { max: 5 }`.');
    }
    const maxValue = isScalar(max.value) ? max.value.value : undefined;
    if (typeof maxValue !== 'number' || !Number.isInteger(maxValue) || maxValue < 0) {
      throw this.fail(max.value, max.keyLine, `${path}.max`, `expected a non-negative whole number of restarts, got ${describe(max.value)}`, 'Write e.g. `max: 5`.');
    }
    const backoff = fields.get('backoff');
    const maxBackoff = fields.get('max_backoff');
    const backoffMs = backoff === undefined ? DEFAULT_RESTART_BACKOFF_MS : this.readDuration(backoff.value, backoff.keyLine, `${path}.backoff`);
    const maxBackoffMs = maxBackoff === undefined ? Math.max(DEFAULT_RESTART_MAX_BACKOFF_MS, backoffMs) : this.readDuration(maxBackoff.value, maxBackoff.keyLine, `${path}.max_backoff`);
    if (maxBackoff !== undefined && maxBackoffMs < backoffMs) {
      throw this.fail(maxBackoff.value, maxBackoff.keyLine, `${path}.max_backoff`, `max_backoff (${maxBackoffMs}ms) is shorter than backoff (${backoffMs}ms)`, 'Make max_backoff at least as long as backoff.');
    }
    return { maxRestarts: maxValue, backoffMs, maxBackoffMs };
  }

  private readReady(entry: Entry, path: string): ReadyCheck {
    const node = entry.value;
    const example = 'Write one of `ready: { tcp: 3000 }`, `ready: { http: "http://127.0.0.1:3000/health" }` or `ready: { log: "listening on" }`, with an optional `timeout: 30s`.';
    if (!isMap(node)) throw this.fail(node, entry.keyLine, path, `expected a mapping, got ${describe(node)}`, example);
    const fields = this.entries(node, path, readyFields);
    const kinds = (['tcp', 'http', 'log'] as const).filter((k) => fields.has(k));
    if (kinds.length !== 1) {
      const line = kinds.length === 0 ? entry.keyLine : (fields.get(kinds[1] as 'tcp' | 'http' | 'log') as Entry).keyLine;
      throw configError(this.file, line, path, kinds.length === 0 ? 'no readiness check is given' : `give one readiness check, got ${kinds.join(' and ')}`, example);
    }
    const timeout = fields.get('timeout');
    const timeoutMs = timeout === undefined ? DEFAULT_READY_TIMEOUT_MS : this.readDuration(timeout.value, timeout.keyLine, `${path}.timeout`);
    const kind = kinds[0] as 'tcp' | 'http' | 'log';
    const check = fields.get(kind) as Entry;
    const value = isScalar(check.value) ? check.value.value : undefined;
    if (kind === 'tcp') return { tcp: this.readPort(check.value, check.keyLine, `${path}.tcp`), timeoutMs };
    if (kind === 'http') {
      let url: URL | undefined;
      try {
        url = typeof value === 'string' ? new URL(value) : undefined;
      } catch {
        url = undefined;
      }
      if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
        throw this.fail(check.value, check.keyLine, `${path}.http`, `expected an http:// or https:// URL, got ${describe(check.value)}`, 'Write the full URL, e.g. `http: "http://127.0.0.1:3000/health"`.');
      }
      return { http: value as string, timeoutMs };
    }
    if (typeof value !== 'string' || value === '') {
      throw this.fail(check.value, check.keyLine, `${path}.log`, `expected a regular expression, got ${describe(check.value)}`, 'Write a pattern that a line of output matches, e.g. `log: "listening on port \\d+"`.');
    }
    try {
      new RegExp(value);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw this.fail(check.value, check.keyLine, `${path}.log`, `${describe(check.value)} is not a valid regular expression (${reason})`, 'Correct the pattern; escape characters such as ( [ { . * + ? with a backslash to match them literally.');
    }
    return { log: value, timeoutMs };
  }

  private readPorts(entry: Entry, path: string): number[] {
    const node = entry.value;
    if (!isSeq(node)) {
      throw this.fail(node, entry.keyLine, path, `expected a list of port numbers, got ${describe(node)}`, `Write a list, e.g. \`ports: [${isScalar(node) && typeof node.value === 'number' ? node.value : 3000}]\`.`);
    }
    const ports: number[] = [];
    this.items(node).forEach((item, index) => {
      const port = this.readPort(item, entry.keyLine, `${path}[${index}]`);
      if (ports.includes(port)) throw this.fail(item, entry.keyLine, `${path}[${index}]`, `port ${port} is listed twice`, 'Remove the duplicate.');
      ports.push(port);
    });
    return ports;
  }

  private readPort(node: YamlNode | undefined, fallbackLine: number, path: string): number {
    return this.readRule(rules.port, node, fallbackLine, path);
  }


  private readDependsOn(entry: Entry, path: string): Dependency[] {
    const node = entry.value;
    if (!isSeq(node)) {
      throw this.fail(node, entry.keyLine, path, `expected a list of service names, got ${describe(node)}`, 'Write a list, e.g. `depends_on: [db]`.');
    }
    const names = this.readStringList(entry, path);
    return names.map((name, index) => {
      const line = this.lineOf(this.items(node)[index], entry.keyLine);
      if (names.indexOf(name) !== index) throw configError(this.file, line, `${path}[${index}]`, `"${name}" is listed twice`, 'Remove the duplicate.');
      return { name, line };
    });
  }

  private readSignal(entry: Entry, path: string): SignalName {
    return this.readRule(rules.stopSignal, entry.value, entry.keyLine, path);
  }


  private readStrategy(entry: Entry, path: string): StrategyChoice {
    return this.readRule(rules.strategy, entry.value, entry.keyLine, path);
  }

  /** A field that obeys one of the service rules: the rule's words, framed as file:line. */
  private readRule<T>(rule: rules.Rule<T>, node: YamlNode | undefined, fallbackLine: number, path: string): T {
    const value = isScalar(node) ? node.value : undefined;
    const read = rule.read(value);
    if (read === undefined) throw this.fail(node, fallbackLine, path, `expected ${rule.expected}, got ${describe(node)}`, rule.fix(value));
    return read;
  }


  private readBoolean(entry: Entry, path: string): boolean {
    const value = isScalar(entry.value) ? entry.value.value : undefined;
    if (typeof value !== 'boolean') {
      throw this.fail(entry.value, entry.keyLine, path, `expected true or false, got ${describe(entry.value)}`, 'Write true or false without quotes.');
    }
    return value;
  }

  /** "500ms", "5s", "2m", "1h" (decimals allowed: "1.5s") or a whole number of milliseconds. */
  private readDuration(node: YamlNode | undefined, fallbackLine: number, path: string): number {
    const reading = readDuration(isScalar(node) ? node.value : undefined);
    if (!reading.ok) {
      const problem = isScalar(node) ? reading.problem : `got ${describe(node)}`;
      throw this.fail(node, fallbackLine, path, `expected a duration such as 500ms, 10s or 2m: ${problem}`, reading.fix);
    }
    return reading.ms;
  }

  /** Every name in depends_on must be a service in this file, and the graph must be acyclic. */
  private checkDependencies(services: readonly ServiceConfig[], dependencies: ReadonlyMap<string, readonly Dependency[]>): void {
    const names = services.map((s) => s.name);
    for (const [name, deps] of dependencies) {
      for (const [index, dep] of deps.entries()) {
        if (dependencies.has(dep.name)) continue;
        const suggestion = closest(dep.name, names);
        throw configError(
          this.file,
          dep.line,
          `services.${name}.depends_on[${index}]`,
          `unknown service "${dep.name}"`,
          `${suggestion === undefined ? '' : `Did you mean "${suggestion}"? `}Name a service declared in this file (${names.join(', ')}), or remove it.`,
        );
      }
    }
    // Depth-first in declaration order, so the same file always reports the same cycle.
    const done = new Set<string>();
    const stack: string[] = [];
    const visit = (name: string): void => {
      if (done.has(name)) return;
      stack.push(name);
      const deps = dependencies.get(name) ?? [];
      for (const [index, dep] of deps.entries()) {
        const at = stack.indexOf(dep.name);
        if (at !== -1) {
          const cycle = [...stack.slice(at), dep.name].join(' -> ');
          throw configError(this.file, dep.line, `services.${name}.depends_on[${index}]`, `dependency cycle: ${cycle}`, 'Remove one of these dependencies so the services can start in order.');
        }
        visit(dep.name);
      }
      stack.pop();
      done.add(name);
    };
    for (const name of names) visit(name);
  }

  private checkPortConflicts(servicesNode: YAMLMap, services: readonly ServiceConfig[]): void {
    const owner = new Map<number, string>();
    for (const [serviceIndex, service] of services.entries()) {
      for (const [index, port] of service.ports.entries()) {
        const other = owner.get(port);
        if (other === undefined) {
          owner.set(port, service.name);
          continue;
        }
        const portsNode = this.lookup(this.deref(asNode(servicesNode.items[serviceIndex]?.value)), 'ports');
        const item = isSeq(portsNode) ? this.items(portsNode)[index] : undefined;
        throw configError(
          this.file,
          this.lineOf(item, 1),
          `services.${service.name}.ports[${index}]`,
          `port ${port} is already declared by service "${other}"`,
          'Give each service its own ports; two services cannot listen on one port.',
        );
      }
    }
  }

  /** The entries of a mapping by key, refusing keys not in `known` (with a did-you-mean). */
  private entries<K extends string>(map: YAMLMap, parent: string | undefined, known: readonly K[]): Map<K, Entry> {
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

  private lookup(node: YamlNode | undefined, key: string): YamlNode | undefined {
    if (!isMap(node)) return undefined;
    const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
    return this.deref(asNode(pair?.value));
  }

  private items(seq: YAMLSeq): (YamlNode | undefined)[] {
    return seq.items.map((item) => this.deref(asNode(item)));
  }

  /** An alias stands for the node its anchor names; an alias to nothing is left as is and fails as a wrong type. */
  private deref(node: YamlNode | undefined): YamlNode | undefined {
    return isAlias(node) ? (node.resolve(this.doc) ?? node) : node;
  }

  private lineOf(node: YamlNode | undefined, fallback: number): number {
    const start = node?.range?.[0];
    return start === undefined ? fallback : this.lines.linePos(start).line;
  }

  /** An error at `node`'s line, or at `fallbackLine` (the key's) when the value is absent. */
  private fail(node: YamlNode | undefined, fallbackLine: number, field: string | undefined, message: string, fix: string): TendError {
    return configError(this.file, this.lineOf(node, fallbackLine), field, message, fix);
  }
}

function asNode(value: unknown): YamlNode | undefined {
  return isNode(value) ? value : undefined;
}

/** Strips one pair of matching surrounding quotes, as shells and dotenv do. */
function unquote(value: string): string {
  if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) return value.slice(1, -1);
  return value;
}
