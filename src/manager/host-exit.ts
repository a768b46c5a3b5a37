import type { ProcessManager } from './process-manager.js';

/**
 * Ties live managers to the host program's end. Installed when the first
 * manager is created (never at import), removed when the last one shuts down.
 *
 * - Normal exit ("exit" event): every tree is stopped synchronously first.
 * - SIGINT, SIGTERM, SIGHUP with no other listener: every tree is stopped
 *   gracefully, then the signal is re-raised with its default action, so the
 *   host's exit status still says it was killed by that signal. A second
 *   signal while stopping skips the grace period.
 * - With other listeners, the host owns the signal; its eventual exit still
 *   runs the exit hook.
 */
const handledSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type HandledSignal = (typeof handledSignals)[number];

const managers = new Set<ProcessManager>();
const signalling = new Set<ProcessManager>();
let installed = false;
let stopping = false;

export function trackManager(manager: ProcessManager, handleSignals: boolean): void {
  managers.add(manager);
  if (handleSignals) signalling.add(manager);
  if (!installed) install();
}

export function untrackManager(manager: ProcessManager): void {
  managers.delete(manager);
  signalling.delete(manager);
  if (managers.size === 0 && installed) uninstall();
}

function onExit(): void {
  for (const manager of managers) manager.stopAllSync();
}

const listeners = new Map<HandledSignal, () => void>(handledSignals.map((s) => [s, () => onSignal(s)]));

function onSignal(signal: HandledSignal): void {
  const own = listeners.get(signal);
  const others = process.listeners(signal).filter((l) => l !== own);
  if (others.length > 0 || signalling.size === 0) return;
  if (stopping) {
    for (const manager of signalling) manager.stopAllSync();
    reraise(signal);
    return;
  }
  stopping = true;
  const all = [...signalling].map((m) => m.shutdown());
  void Promise.allSettled(all).then(() => reraise(signal));
}

function reraise(signal: HandledSignal): void {
  onExit();
  uninstall();
  process.kill(process.pid, signal);
}

function install(): void {
  installed = true;
  process.on('exit', onExit);
  for (const [signal, listener] of listeners) process.on(signal, listener);
}

function uninstall(): void {
  installed = false;
  process.removeListener('exit', onExit);
  for (const [signal, listener] of listeners) process.removeListener(signal, listener);
}
