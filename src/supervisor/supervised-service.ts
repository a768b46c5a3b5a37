/**
 * What the supervisor knows of one service: its definition, where it is in
 * its state machine and why, and the runs in flight. The transitions are the
 * lifecycle's (lifecycle.ts); this is the record they act on.
 */
import type { ProcessHandle } from '../manager/process-handle.js';
import type { ServiceConfig } from '../service/definition.js';
import type { CpuSample } from './health.js';
import { ServiceOutput, type OutputOptions } from './output.js';
import { RestartTracker } from './restart-policy.js';
import type { Run } from './run.js';
import type { ServiceExitInfo, ServiceState } from './service-info.js';
import { ServiceWork } from './service-work.js';

export class SupervisedService {
  wanted = false;
  state: ServiceState = 'stopped';
  reason: string | null = null;
  tracker: RestartTracker;
  restarts = 0;
  lastExit: ServiceExitInfo | null = null;
  ready: boolean | null = null;
  unresponsive = false;
  /** The current run; any other run is stale. None once it ended (exit, interrupt). */
  run: Run | undefined;
  /** The run whose tree is alive, current or not (a stop interrupts the run first, then stops its tree). */
  live: Run | undefined;
  /** The run whose launch is in flight, so that its definition is not replaced under it. */
  launching: Run | undefined;
  readonly work = new ServiceWork();
  readonly output: ServiceOutput;
  /** For ps/status: the CPU time at the previous look. */
  lookSample: CpuSample | undefined;
  lastPercent: number | null = null;

  constructor(
    public definition: ServiceConfig,
    outputOptions: OutputOptions,
  ) {
    this.tracker = trackerFor(definition);
    this.output = new ServiceOutput(definition.name, outputOptions);
  }

  get name(): string {
    return this.definition.name;
  }

  /** The tree that runs now, if any. */
  get handle(): ProcessHandle | undefined {
    return this.live?.handle;
  }

  /** Replaces the definition (the service is not running): a new restart count, a log at the new path. */
  redefine(definition: ServiceConfig): void {
    this.definition = definition;
    this.tracker = trackerFor(definition);
    this.output.closeLog();
  }
}

function trackerFor(definition: ServiceConfig): RestartTracker {
  return new RestartTracker({ policy: definition.restart, limit: definition.restartLimit });
}
