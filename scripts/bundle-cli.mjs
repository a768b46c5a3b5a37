#!/usr/bin/env node
// Bundles the compiled CLI into one CommonJS file, dist/src/bin/tend.js.
// Every tend command starts a node process, so its start-up is the CLI's
// cost: Node 20 loads ES modules one at a time and its ES module loader
// alone costs ~6 ms a start, so the CLI is one CommonJS file (measured:
// `tend ps --json` 1.43x `node -e 0` as split ES chunks, 1.32x as one file).
// yaml stays outside, required only by the commands that read a config file.
// The library itself is not bundled.
import { build } from 'esbuild';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';

const outdir = 'dist/src/bin';
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { tend: 'dist/src/cli/main.js' },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outdir,
  external: ['yaml'],
  logLevel: 'warning',
  // The code finds its package through import.meta.url, which CommonJS lacks.
  define: { 'import.meta.url': '__tendModuleUrl' },
  banner: { js: "const __tendModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
});
// The package is "type": "module"; this directory holds CommonJS.
writeFileSync(`${outdir}/package.json`, '{ "type": "commonjs" }\n');
chmodSync(`${outdir}/tend.js`, 0o755);
