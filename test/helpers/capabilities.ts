// Says why a test cannot run here, so it is skipped with the reason printed
// rather than passed silently.
import { existsSync } from 'node:fs';
import { ProcessManager, type ManagerOptions, type StrategyName } from '../../src/index.js';

export const isRoot = process.getuid?.() === 0;

/** Undefined when `strategy` can run with these manager options here; otherwise why not. */
export async function strategySkipReason(strategy: StrategyName, options: ManagerOptions = {}): Promise<string | undefined> {
  if (!existsSync('/proc/self/environ')) return 'these tests read /proc/<pid>/environ, which this system lacks';
  const manager = await ProcessManager.create({ ...options, handleSignals: false });
  try {
    const support = manager.capabilities().strategies[strategy];
    if (support.available) return undefined;
    const who = isRoot ? '' : ' (not running as root)';
    return `strategy ${strategy} is unavailable${who}: ${support.reason}`;
  } finally {
    await manager.shutdown();
  }
}

/** Undefined when this process runs as root; otherwise why a root-only test is skipped. */
export function rootSkipReason(): string | undefined {
  return isRoot ? undefined : 'needs root';
}
