/** What the host's end needs of a manager. */
export interface ExitParticipant {
  /** Stops every tree without awaiting anything (the exit path); `force` skips the grace period. */
  stopAllSync(force?: boolean): void;
  shutdown(): Promise<void>;
}

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

const managers = new Set<ExitParticipant>();
const signalling = new Set<ExitParticipant>();
let stopping = false;

export function trackManager(manager: ExitParticipant, handleSignals: boolean): void {
  if (managers.size === 0) process.on('exit', onExit);
  managers.add(manager);
  // A listener's mere presence turns off Node's default "die on this signal":
  // listen only while some manager asked for it.
  if (handleSignals && signalling.size === 0) for (const [signal, listener] of listeners) process.on(signal, listener);
  if (handleSignals) signalling.add(manager);
}

export function untrackManager(manager: ExitParticipant): void {
  if (signalling.delete(manager) && signalling.size === 0) removeSignalListeners();
  if (managers.delete(manager) && managers.size === 0) process.removeListener('exit', onExit);
}

function onExit(): void {
  for (const manager of managers) manager.stopAllSync();
}

/** A second signal while stopping: no more grace for anyone. */
function onExitForced(): void {
  for (const manager of managers) manager.stopAllSync(true);
}

const listeners = new Map<HandledSignal, () => void>(handledSignals.map((s) => [s, () => onSignal(s)]));

function removeSignalListeners(): void {
  for (const [signal, listener] of listeners) process.removeListener(signal, listener);
}

function onSignal(signal: HandledSignal): void {
  const own = listeners.get(signal);
  if (process.listeners(signal).some((l) => l !== own)) return;
  if (stopping) {
    onExitForced();
    reraise(signal);
    return;
  }
  stopping = true;
  void Promise.allSettled([...signalling].map((m) => m.shutdown())).then(() => reraise(signal));
}

/** Stops whatever is left at once, then dies of the signal with its default action, as if tend had not been there. */
function reraise(signal: HandledSignal): void {
  onExit();
  removeSignalListeners();
  process.removeListener('exit', onExit);
  process.kill(process.pid, signal);
}
