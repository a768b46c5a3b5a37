/**
 * The supervisor's stack file (`tend.yaml` or `tend.json`): parsed with the
 * `yaml` package for both formats (JSON is YAML 1.2), so every error points at
 * the line of the node that is wrong. Validation stops at the first problem and
 * throws CONFIG_INVALID naming file:line, the field path and the fix.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type YAMLMap } from 'yaml';
import { TendError, errnoOf } from '../core/errors.js';
import type { SignalName } from '../core/signals.js';
import type { StrategyChoice } from '../core/types.js';
import { DEFAULT_STOP_TIMEOUT_MS, closest } from '../spawn/normalize-spec.js';
import { describeCycle, findCycle } from '../service/graph.js';
import * as rules from '../service/rules.js';
import { EnvReader } from './env-reader.js';
import { asNode, configError, describe, type Entry, type YamlNode } from './yaml-reader.js';

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




/** Names a service depends on, with the line of each, for the checks that need every service first. */
interface Dependency {
  readonly name: string;
  readonly line: number;
}

class ConfigReader extends EnvReader {

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

  private readPath(entry: Entry, path: string, what: string): string {
    const value = isScalar(entry.value) ? entry.value.value : undefined;
    if (typeof value !== 'string' || value === '' || value.includes('\0')) {
      throw this.fail(entry.value, entry.keyLine, path, `expected the path of ${what}, got ${describe(entry.value)}`, `Give a path; a relative one is resolved against ${this.dir}.`);
    }
    return value;
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
    // Depth-first in declaration order, so the same file always reports the same cycle, at the dependency that closes it.
    const cycle = findCycle(names, (name) => dependencies.get(name)?.map((d) => d.name));
    if (cycle === undefined) return;
    const [from, to] = cycle.slice(-2) as [string, string];
    const deps = dependencies.get(from) ?? [];
    const index = deps.findIndex((d) => d.name === to);
    throw configError(this.file, deps[index]?.line ?? 1, `services.${from}.depends_on[${index}]`, `dependency cycle: ${describeCycle(cycle)}`, 'Remove one of these dependencies so the services can start in order.');
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

}


