/**
 * Waiting for a service's dependencies: a start goes on once each one runs
 * (and is ready), and fails with DEPENDENCY_FAILED as soon as one has ended
 * instead. The order they start in and the cycle check are the graph's
 * (service/graph.ts); this is the wait, driven by the supervisor's events.
 */
import type { EventEmitter } from 'node:events';
import { TendError } from '../core/errors.js';
import type { SupervisorEvents } from './lifecycle.js';
import type { SupervisedService } from './supervised-service.js';

/** Resolves once every dependency runs (and is ready); rejects with DEPENDENCY_FAILED when one ends instead, or with the abort reason. */
export async function waitForDependencies(
  service: SupervisedService,
  lookup: (name: string) => SupervisedService | undefined,
  events: EventEmitter<SupervisorEvents>,
  signal: AbortSignal,
): Promise<void> {
  for (const name of service.definition.dependsOn) {
    const dependency = lookup(name);
    if (!dependency) {
      throw new TendError('DEPENDENCY_FAILED', { name: service.name, dependency: name, state: 'not defined', reason: undefined });
    }
    await waitForDependency(service.name, dependency, events, signal);
  }
}

function waitForDependency(dependent: string, dependency: SupervisedService, events: EventEmitter<SupervisorEvents>, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const check = (): boolean => {
      if (dependency.state === 'running') return finish();
      if (dependency.state === 'failed' || dependency.state === 'exited' || (dependency.state === 'stopped' && !dependency.wanted)) {
        return finish(new TendError('DEPENDENCY_FAILED', { name: dependent, dependency: dependency.name, state: dependency.state, reason: dependency.reason ?? undefined }));
      }
      return false;
    };
    const onState = (changed: string): void => {
      if (changed === dependency.name) check();
    };
    const onAbort = (): void => void finish(signal.reason);
    const finish = (error?: unknown): true => {
      events.off('state', onState);
      signal.removeEventListener('abort', onAbort);
      if (error === undefined) resolve();
      else reject(error instanceof Error ? error : new Error('the start was interrupted'));
      return true;
    };
    if (signal.aborted) return void finish(signal.reason);
    if (check()) return;
    events.on('state', onState);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
