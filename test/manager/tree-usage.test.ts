// readTreeUsage: what `ps` shows of one tree (members, the command's pid,
// CPU time and resident memory) agrees with members(), status() and
// readUsage(), and reads each member's /proc/<pid>/stat once: counted through
// the process table the manager is given.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { ProcessManager, type ProcessHandle } from '../../src/index.js';
import { readTreeUsage } from '../../src/manager/tree-usage.js';
import { systemProcessTable, type ProcEntry, type ProcessTable } from '../../src/platform/proc-table.js';
import { readUsage } from '../../src/platform/usage.js';
import { strategySkipReason } from '../helpers/capabilities.js';
import { RUN_VARIABLE, cleanupByMarker, removeCgroups } from '../helpers/cleanup.js';
import { PATH, SH } from '../helpers/fixtures.js';
import { describeProcesses, survivorsOf, type MarkedProcess } from '../helpers/proc-scan.js';
import { nativeStrategies } from '../helpers/strategies.js';
import { waitFor, withDeadline } from '../helpers/wait.js';

const RUN = `tree-usage-${randomBytes(6).toString('hex')}`;
const SLEEP = ['/usr/bin/sleep', '/bin/sleep'].find((p) => existsSync(p)) ?? 'sleep';
const managers: ProcessManager[] = [];
const cgroups = new Set<string>();

after(async () => {
  await Promise.allSettled(managers.map((m) => withDeadline(m.shutdown({ timeoutMs: 0 }), { what: 'manager.shutdown() in cleanup', timeoutMs: 5_000 })));
  await cleanupByMarker({ variable: RUN_VARIABLE, value: RUN });
  removeCgroups(cgroups);
});

/** The system's table, counting what is read through it. */
class CountingTable implements ProcessTable {
  readonly reads = new Map<number, number>();
  lists = 0;
  readonly #inner = systemProcessTable();

  read(pid: number): ProcEntry | undefined {
    this.reads.set(pid, (this.reads.get(pid) ?? 0) + 1);
    return this.#inner.read(pid);
  }

  list(): ProcEntry[] {
    this.lists++;
    return this.#inner.list();
  }

  marker(pid: number): string | undefined {
    return this.#inner.marker(pid);
  }

  bootId(): string {
    return this.#inner.bootId();
  }

  reset(): void {
    this.reads.clear();
    this.lists = 0;
  }
}

async function awaitSleeps(handle: ProcessHandle, count: number): Promise<MarkedProcess[]> {
  let seen: MarkedProcess[] = [];
  return waitFor(() => ((seen = survivorsOf(handle.id)).filter((p) => p.comm === 'sleep').length >= count ? seen : undefined), {
    what: `${count} sleep processes of ${handle.id}`,
    detail: () => describeProcesses(seen),
  });
}

const sorted = (pids: readonly number[]): number[] => [...pids].sort((a, b) => a - b);

describe('readTreeUsage', { concurrency: true }, () => {
  for (const config of nativeStrategies) {
    test(`${config.title}: agrees with members(), status() and readUsage(), one stat read per member`, async (t) => {
      const skip = await strategySkipReason(config.strategy, config.options);
      if (skip) return t.skip(skip);
      const table = new CountingTable();
      const manager = await ProcessManager.create({ ...config.options, processTable: table });
      managers.push(manager);
      const handle = await manager.start({
        command: SH,
        args: ['-c', `${SLEEP} 1000 & ${SLEEP} 1000 & wait`],
        env: { PATH, [RUN_VARIABLE]: RUN },
        strategy: config.strategy,
        stopTimeoutMs: 1000,
      });
      if (handle.cgroup) cgroups.add(handle.cgroup);
      await awaitSleeps(handle, 2);

      table.reset();
      const usage = readTreeUsage(handle);
      const members = handle.members();
      assert.deepEqual(sorted(usage.pids), sorted(members), 'the same members as members()');
      assert.equal(usage.pids.length, 3, `sh and its two sleeps: ${usage.pids.join(' ')}`);
      const status = handle.status();
      assert.equal(status.state, 'running');
      assert.equal(usage.pid, status.state === 'running' ? status.pid : undefined, 'the pid status() shows');
      assert.ok(usage.rssBytes > 0, `resident memory ${usage.rssBytes}`);
      // Resident memory of idle sleeps hardly moves; CPU time only grows.
      const separately = readUsage(members);
      assert.ok(Math.abs(separately.rssBytes - usage.rssBytes) <= separately.rssBytes / 2, `rss ${usage.rssBytes} vs ${separately.rssBytes} read separately`);
      assert.ok(usage.cpuMs >= 0 && usage.cpuMs <= separately.cpuMs, `cpu ${usage.cpuMs} ms vs ${separately.cpuMs} ms read after`);

      // Counted for readTreeUsage alone: a fresh look, after the checks above read the table again.
      table.reset();
      readTreeUsage(handle);
      if (config.strategy === 'cgroup') {
        assert.equal(table.lists, 0, 'a cgroup tree needs no scan of the process table');
        for (const pid of usage.pids) assert.equal(table.reads.get(pid), 1, `pid ${pid} was read ${table.reads.get(pid) ?? 0} times`);
        assert.deepEqual(sorted([...table.reads.keys()]), sorted(usage.pids), 'only members are read');
      } else {
        // A pgroup tree is found in one scan of the table, which reads every process once; pidns walks it for its leader too.
        assert.equal(table.reads.size, 0, `no read besides the scan: ${[...table.reads.keys()].join(' ')}`);
        assert.equal(table.lists, config.strategy === 'pgroup' ? 1 : 2);
      }
      await handle.stop();
    });
  }
});
