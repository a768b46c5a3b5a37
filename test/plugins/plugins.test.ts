import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ProcessManager, type ConfigurationPlugin, type PluginWarning, type ProcessSpec } from '../../src/index.js';
import { PluginRegistry } from '../../src/plugins/plugin.js';
import { matchInstalledVersion, nodeVersionPlugin, detectPlugins } from '../../src/plugins/node-version.js';
import { isTendError } from '../../src/core/errors.js';

const temp = mkdtempSync(join(tmpdir(), 'tend-plugins-'));
after(() => rmSync(temp, { recursive: true, force: true }));

const plugin = (name: string, priority: number, enhance: (s: ProcessSpec) => ProcessSpec, applicable = true): ConfigurationPlugin => ({
  name,
  priority,
  isApplicable: () => applicable,
  enhance,
});
const noValidation = (): void => undefined;

test('plugins run in priority order, ties in registration order', async () => {
  const registry = new PluginRegistry();
  const seen: string[] = [];
  const tag = (name: string) => (s: ProcessSpec): ProcessSpec => (seen.push(name), { ...s, args: [...(s.args ?? []), name] });
  registry.register(plugin('late', 50, tag('late')));
  registry.register(plugin('first', 1, tag('first')));
  registry.register(plugin('tie-a', 10, tag('tie-a')));
  registry.register(plugin('tie-b', 10, tag('tie-b')));
  registry.register(plugin('skipped', 0, tag('skipped'), false));
  const out = await registry.apply({ command: 'x' }, noValidation, () => assert.fail('no warning expected'));
  assert.deepEqual(seen, ['first', 'tie-a', 'tie-b', 'late']);
  assert.deepEqual(out.args, ['first', 'tie-a', 'tie-b', 'late']);
  assert.deepEqual(registry.names, ['skipped', 'first', 'tie-a', 'tie-b', 'late']);
});

test('a failing plugin is skipped with a warning and the spec goes on unchanged by it', async () => {
  const registry = new PluginRegistry();
  const warnings: PluginWarning[] = [];
  registry.register(plugin('broken', 1, () => {
    throw new Error('boom');
  }));
  registry.register(plugin('ok', 2, (s) => ({ ...s, name: 'kept' })));
  const out = await registry.apply({ command: 'x' }, noValidation, (w) => warnings.push(w));
  assert.equal(out.name, 'kept');
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]?.plugin, 'broken');
  assert.match(warnings[0]?.message ?? '', /boom/);
});

test("a plugin's output is validated; an invalid result is dropped with a warning", async () => {
  const manager = await ProcessManager.create({ handleSignals: false });
  const warnings: string[] = [];
  manager.on('warning', (w) => warnings.push(w.message));
  manager.registerPlugin(plugin('breaks-cwd', 1, (s) => ({ ...s, cwd: join(temp, 'does-not-exist') })));
  const handle = await manager.start({ command: '/bin/sh', args: ['-c', 'pwd'], cwd: temp, stdio: 'pipe' });
  let out = '';
  handle.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const status = await handle.wait();
  assert.equal(status.state, 'exited');
  assert.equal(out.trim(), temp);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] ?? '', /breaks-cwd.*SPEC_CWD_MISSING|does not exist/);
  await manager.shutdown();
});

test('registerPlugin refuses what is not a plugin', async () => {
  const manager = await ProcessManager.create({ handleSignals: false });
  assert.throws(() => manager.registerPlugin({ name: 'x' } as unknown as ConfigurationPlugin), (e) => isTendError(e, 'PLUGIN_INVALID'));
  await manager.shutdown();
});

test('node version pins match the highest installed version', () => {
  const installed = ['v18.19.0', 'v20.9.0', 'v20.11.1', 'v20.11.0', 'v22.1.0', 'system'];
  assert.equal(matchInstalledVersion('20', installed), '20.11.1');
  assert.equal(matchInstalledVersion('20.11', installed), '20.11.1');
  assert.equal(matchInstalledVersion('20.11.0', installed), '20.11.0');
  assert.equal(matchInstalledVersion('21', installed), undefined);
  assert.equal(matchInstalledVersion('2', installed), undefined);
});

test('the node-version plugin puts the pinned Node first on the PATH, and is detected from NVM_DIR', async () => {
  const nvmDir = join(temp, 'nvm');
  const bin = join(nvmDir, 'versions', 'node', 'v20.11.1', 'bin');
  mkdirSync(bin, { recursive: true });
  // A stand-in "node" that reports which one ran.
  writeFileSync(join(bin, 'node'), '#!/bin/sh\necho pinned-20.11.1\n');
  chmodSync(join(bin, 'node'), 0o755);
  const project = join(temp, 'project');
  mkdirSync(project);
  writeFileSync(join(project, '.nvmrc'), 'v20\n');

  const detected = detectPlugins({ NVM_DIR: nvmDir, PATH: '/usr/bin:/bin' });
  assert.deepEqual(detected.map((p) => p.name), ['node-version']);
  assert.deepEqual(detectPlugins({ NVM_DIR: join(temp, 'no-nvm') }), []);

  const manager = await ProcessManager.create({ handleSignals: false, autoPlugins: true, env: { NVM_DIR: nvmDir, PATH: '/usr/bin:/bin' } });
  assert.deepEqual(manager.plugins, ['node-version']);
  const log = join(temp, 'node.log');
  const handle = await manager.start({ command: 'node', cwd: project, env: { PATH: '/usr/bin:/bin' }, logFile: log });
  assert.equal((await handle.wait()).state, 'exited');
  assert.equal(readFileSync(log, 'utf8').trim(), 'pinned-20.11.1');

  // Outside the project the spec is untouched: the system's node (or none) runs, not the pinned one.
  const plain = nodeVersionPlugin({ nvmDir, cwd: temp });
  assert.equal(plain.isApplicable({ command: 'node' }), false);
  await manager.shutdown();
});
