#!/usr/bin/env node
// Runs examples/leaky-tree.sh twice: once with child_process.spawn, once under
// `tend exec`, and counts, from /proc, what each leaves behind.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const script = `${root}examples/leaky-tree.sh`;

/** Live processes whose environment holds TEND_ID=<marker>. */
function survivors(marker) {
  const found = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue;
      if (!readFileSync(`/proc/${name}/environ`, 'latin1').split('\0').includes(`TEND_ID=${marker}`)) continue;
      found.push(`${name} ${readFileSync(`/proc/${name}/cmdline`, 'latin1').replaceAll('\0', ' ').trim()}`);
    } catch {
      /* exited while we looked */
    }
  }
  return found;
}

async function run(label, file, args, env) {
  console.log(`\n== ${label}`);
  const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    out += d;
    process.stdout.write(d);
  });
  const [code, signal] = await once(child, 'exit');
  const marker = /TEND_ID=(\S+);/.exec(out)?.[1];
  const left = marker ? survivors(marker) : [];
  console.log(`exit: ${signal ?? code}; processes of that tree still alive: ${left.length}`);
  for (const p of left) console.log(`  ${p}`);
  return { marker, left };
}

const raw = await run('child_process.spawn (no containment)', '/bin/sh', [script], { TEND_ID: `demo-raw-${process.pid}`, PATH: '/usr/bin:/bin' });
const contained = await run('tend exec', process.execPath, [`${root}dist/src/bin/tend.js`, 'exec', '--stop-timeout', '1s', '--', script], {});

// The demo must not leak either: remove what the uncontained run left.
for (const p of survivors(raw.marker)) {
  try {
    process.kill(Number(p.split(' ')[0]), 'SIGKILL');
  } catch {
    /* already gone */
  }
}
console.log(`\nWithout containment ${raw.left.length} processes outlived their parent (the demo has killed them now).`);
console.log(`Under tend exec: ${contained.left.length}.`);
process.exitCode = contained.left.length === 0 ? 0 : 1;
