import { systemProcessTable } from '../../platform/proc-table.js';
import { recoverStateDir } from '../../registry/recover.js';
import { defineCommand } from '../command-kit.js';
import { recoveryJson } from '../json-reports.js';

export const help = `Usage: tend recover [--dry-run] [--json]

Finds process trees recorded in the state directory whose manager is gone
(crashed, SIGKILLed, OOM-killed, with its reaper), kills what is left of them
(their cgroup, every process carrying their TEND_ID marker, their process
group; each identity-checked), removes empty cgroups and the records, and
reports what it cleaned. Trees of live managers are left alone. Every
ProcessManager does this when it is created; this command does it on demand.

The state directory is $TEND_HOME, else $XDG_STATE_HOME/tend, else
~/.local/state/tend.

Options:
      --dry-run  show what would be cleaned, change nothing
      --json     print one JSON document: state_dir, dry_run, trees (handle,
                 name, strategy, manager_pid, pids, cgroup, cgroup_removed,
                 reason), corrupt, live, count, pids, handles
  -h, --help     show this help`;

export const { run } = defineCommand({
  name: 'recover',
  help,
  flags: { 'dry-run': { kind: 'boolean' } },
  positionals: [],
  json: true,
  run: ({ flags, json }) => recover(flags['dry-run'], json),
});

async function recover(dryRun: boolean, json: boolean): Promise<number> {
  const report = await recoverStateDir({ dryRun, table: systemProcessTable() });
  if (json) {
    process.stdout.write(`${JSON.stringify(recoveryJson(report), null, 2)}\n`);
    return 0;
  }
  const pids = report.trees.flatMap((t) => t.pids);
  const verb = report.dryRun ? 'would clean' : 'cleaned';
  const lines = [`state directory: ${report.stateDir}`];
  for (const c of report.corrupt) lines.push(`corrupt record moved aside: ${c.file} -> ${c.movedTo} (${c.reason})`);
  for (const t of report.trees) {
    const what = t.pids.length === 0 ? 'nothing alive' : `${t.pids.length} process(es): ${t.pids.join(' ')}`;
    lines.push(`${verb} ${t.handle}${t.name ? ` (${t.name})` : ''} [${t.strategy}, manager ${t.managerPid}]: ${what}${t.cgroupRemoved ? '; cgroup removed' : ''}`);
  }
  lines.push(`${verb} ${report.trees.length} tree(s), ${pids.length} process(es); ${report.live} tree(s) of live managers left alone`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
