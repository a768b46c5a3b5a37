#!/usr/bin/env node
// Bundles the compiled CLI into dist/src/bin/: Node 20 loads each ES module
// separately, and the ~25 modules of `tend exec` cost more than its own work
// (measured: 1.6x `node -e 0` unbundled, 1.3x bundled). The library itself is
// not bundled. Commands stay in their own chunks, loaded on demand.
import { build } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';

const outdir = 'dist/src/bin';
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { tend: 'dist/src/cli/main.js' },
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outdir,
  chunkNames: '[name]-[hash]',
  logLevel: 'warning',
  // Bundled CommonJS dependencies (yaml) call require() for Node built-ins.
  banner: { js: "import { createRequire as __tendCreateRequire } from 'node:module'; const require = __tendCreateRequire(import.meta.url);" },
});
chmodSync(`${outdir}/tend.js`, 0o755);
