/** The environment of a service in a stack file: `env`, `env_file` (dotenv syntax) and `inherit_env`. */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isMap, isScalar, isSeq } from 'yaml';
import { errnoOf } from '../core/errors.js';
import { MARKER_VARIABLE } from '../core/types.js';
import { YamlReader, asNode, configError, describe, type Entry } from './yaml-reader.js';

export abstract class EnvReader extends YamlReader {
  protected readEnv(entry: Entry, path: string): Record<string, string> {
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

  protected checkEnvName(name: string, line: number, path: string, file = this.file): void {
    if (name === '' || /[=\s\0]/.test(name)) {
      throw configError(file, line, path, `invalid variable name ${JSON.stringify(name)}`, 'Use a name without "=", whitespace or NUL, e.g. DATABASE_URL.');
    }
    if (name === MARKER_VARIABLE) {
      throw configError(file, line, path, `${MARKER_VARIABLE} is reserved: tend sets it on every child to find the whole tree`, `Remove ${MARKER_VARIABLE}.`);
    }
  }

  /** `env_file: app.env` or a list of them, read in order (later files win). */
  protected readEnvFiles(entry: Entry, path: string): Record<string, string> {
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

  protected readEnvFile(name: string, line: number, path: string): Record<string, string> {
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

  protected readInheritEnv(entry: Entry, path: string): boolean | string[] {
    const node = entry.value;
    if (isScalar(node) && typeof node.value === 'boolean') return node.value;
    if (!isSeq(node)) {
      throw this.fail(node, entry.keyLine, path, `expected true, false or a list of variable names, got ${describe(node)}`, 'Write `inherit_env: [PATH, HOME]` to pass just those, or `inherit_env: true` for everything.');
    }
    const names = this.readStringList(entry, path);
    names.forEach((name, index) => this.checkEnvName(name, this.lineOf(this.items(node)[index], entry.keyLine), `${path}[${index}]`));
    return names;
  }
}

/** Strips one pair of matching surrounding quotes, as shells and dotenv do. */
function unquote(value: string): string {
  if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) return value.slice(1, -1);
  return value;
}
