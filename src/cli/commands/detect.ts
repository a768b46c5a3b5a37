import { strategyNames } from '../../core/types.js';
import { detect } from '../../platform/detect.js';
import { defineCommand } from '../command-kit.js';
import { capabilitiesJson } from '../json-reports.js';

export const help = `Usage: tend detect [--json]

Shows which containment strategies this machine offers (strongest first),
which one "auto" picks, and for each one that is not offered, why.

Options:
      --json   print one JSON document: platform, strategies, best,
               parent_death_signal, cgroup
  -h, --help   show this help`;

export const { run } = defineCommand({
  name: 'detect',
  help,
  flags: {},
  positionals: [],
  json: true,
  run: ({ json }) => Promise.resolve(report(json)),
});

function report(json: boolean): number {
  const caps = detect();
  if (json) {
    process.stdout.write(`${JSON.stringify(capabilitiesJson(caps), null, 2)}\n`);
    return 0;
  }
  const lines = [`platform: ${caps.platform}`, `auto picks: ${caps.best ?? 'nothing (no strategy is available)'}`, ''];
  for (const name of strategyNames) {
    const s = caps.strategies[name];
    lines.push(`${s.available ? 'yes' : 'no '}  ${name.padEnd(7)} ${s.reason}`);
  }
  const pd = caps.parentDeathSignal;
  lines.push('', `parent-death signal: ${pd.available ? 'yes' : 'no'} (${pd.reason})`);
  if (caps.cgroup) lines.push(`cgroup: mount ${caps.cgroup.mount}, trees under ${caps.cgroup.parent}, cgroup.kill ${caps.cgroup.cgroupKill ? 'yes' : 'no (freeze and kill each)'}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
