import { strategyNames } from '../../core/types.js';
import { detect } from '../../platform/detect.js';
import { parseArgs, usageError } from '../args.js';

export const help = `Usage: tend detect [--json]

Shows which containment strategies this machine offers (strongest first),
which one "auto" picks, and for each one that is not offered, why.

Options:
      --json   print one JSON document
  -h, --help   show this help`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv, [{ name: 'json', kind: 'boolean' }, { name: 'help', kind: 'boolean', short: 'h' }], 'detect');
  if (parsed.flags.help) {
    process.stdout.write(`${help}\n`);
    return 0;
  }
  if (parsed.positionals.length > 0 || parsed.rest) throw usageError(`tend detect: unexpected argument ${JSON.stringify(parsed.positionals[0] ?? '--')}`);
  const caps = detect();
  if (parsed.flags.json) {
    process.stdout.write(`${JSON.stringify(caps, null, 2)}\n`);
    return Promise.resolve(0);
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
