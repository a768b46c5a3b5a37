// Last line of defence: whatever a failing test left behind is SIGKILLed by
// its marker, so it cannot leak into the next test or outlive the suite.
import { rmdirSync } from 'node:fs';
import { describeProcesses, findMarked, isStillAlive, type MarkedProcess, type MarkerMatch } from './proc-scan.js';
import { waitFor } from './wait.js';

/**
 * Every process a test file starts carries RUN_VARIABLE=<its run id> too (in
 * the spec's env, or the spawn env), so that `after` finds whatever a failing
 * test left, even one whose TEND_ID the test never learnt.
 */
export const RUN_VARIABLE = 'TEND_TEST_RUN';

/**
 * SIGKILLs every live process matching the marker, repeating until a scan
 * finds none (a dying parent may fork on the way) and every process it killed
 * has fully exited (its environment goes before its last thread does).
 * Returns what it found alive at first, and reports it on stderr: anything
 * found here is a leak the test that started it should already have failed
 * on. Throws when something is still alive after the deadline.
 */
export async function cleanupByMarker(match: MarkerMatch, options: { timeoutMs?: number; quiet?: boolean } = {}): Promise<MarkedProcess[]> {
  const first = findMarked(match);
  if (first.length > 0 && options.quiet !== true) {
    process.stderr.write(`cleanup: SIGKILLing ${first.length} leftover process(es) marked ${JSON.stringify(match)}:\n${describeProcesses(first)}\n`);
  }
  const killed = new Map<number, MarkedProcess>();
  let left: MarkedProcess[] = [];
  await waitFor(
    () => {
      const live = findMarked(match);
      for (const p of live) killed.set(p.pid, p);
      const exiting = [...killed.values()].filter((p) => isStillAlive(p.pid, p.startTime) && !live.some((q) => q.pid === p.pid));
      left = [...live, ...exiting];
      if (left.length === 0) return true;
      for (const p of live) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
        }
      }
      return false;
    },
    {
      what: `cleanup to kill every process marked ${JSON.stringify(match)}`,
      timeoutMs: options.timeoutMs ?? 10_000,
      detail: () => describeProcesses(left),
    },
  );
  return first;
}

/** Removes cgroup directories a failed test may have left; returns those it removed. */
export function removeCgroups(dirs: Iterable<string>): string[] {
  const removed: string[] = [];
  for (const dir of dirs) {
    try {
      rmdirSync(dir);
      removed.push(dir);
    } catch {
      /* already gone (the normal case), or still populated (reported by the tests) */
    }
  }
  return removed;
}
