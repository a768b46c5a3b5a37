/**
 * Whether a running service still responds (`unresponsive:`): its tree kept
 * a whole CPU busy for `cpu_window`, or its readiness check, re-run every
 * `probe_interval` as a liveness probe, failed `probe_failures` times in a row.
 * The watch only observes; the lifecycle decides what follows (a restart).
 */
import type { ProcessHandle } from '../manager/process-handle.js';
import { readUsage } from '../platform/usage.js';
import type { ServiceConfig } from '../service/definition.js';
import { waitUntilReady } from './readiness.js';

/** Probes while checking liveness get this long at most. */
const LIVENESS_PROBE_TIMEOUT_MS = 5000;
/** Share of one CPU over the window that counts as pinned. */
const PINNED_SHARE = 0.95;

export interface CpuSample {
  readonly at: number;
  readonly cpuMs: number;
}

/** What the watch needs of a running service. */
export interface WatchedService {
  readonly name: string;
  readonly definition: ServiceConfig;
  readonly handle: ProcessHandle | undefined;
}

export interface HealthOptions {
  /** How often CPU use is sampled for `cpu_window`. */
  readonly sampleIntervalMs: number;
  readonly onUnresponsive: (service: WatchedService, reason: string) => void;
  readonly onResponsive: (service: WatchedService) => void;
  /** For liveness probes: why the listener on `port` is not the service's own, or undefined. */
  readonly listenerOwner: (service: WatchedService, port: number, answered: boolean) => string | undefined;
}

interface Watch {
  /** False once the run it watches is over: a probe in flight then reports nothing. */
  readonly current: () => boolean;
  cpuSamples: CpuSample[];
  probeFailures: number;
  probeTimer: NodeJS.Timeout | undefined;
}

export class HealthWatch {
  readonly #options: HealthOptions;
  readonly #watches = new Map<WatchedService, Watch>();
  #sampler: NodeJS.Timeout | undefined;

  constructor(options: HealthOptions) {
    this.#options = options;
  }

  /** Starts watching a service that just became running; `current` says whether that run is still the service's. */
  watch(service: WatchedService, current: () => boolean): void {
    const config = service.definition.unresponsive;
    this.unwatch(service);
    if (!config) return;
    const watch: Watch = { current, cpuSamples: [], probeFailures: 0, probeTimer: undefined };
    this.#watches.set(service, watch);
    if (config.cpuWindowMs !== undefined && !this.#sampler) {
      this.#sampler = setInterval(() => this.#sampleAll(), this.#options.sampleIntervalMs);
      this.#sampler.unref();
    }
    // A log check proves readiness once; it cannot be re-run against past output.
    const check = service.definition.ready;
    if (config.probeIntervalMs !== undefined && check && !('log' in check)) this.#scheduleProbe(service, watch, config.probeIntervalMs);
  }

  unwatch(service: WatchedService): void {
    const watch = this.#watches.get(service);
    if (watch?.probeTimer) clearTimeout(watch.probeTimer);
    this.#watches.delete(service);
  }

  /** Whether liveness probes pass (or there are none) as far as the watch knows. */
  probesPass(service: WatchedService): boolean {
    return (this.#watches.get(service)?.probeFailures ?? 0) === 0;
  }

  close(): void {
    for (const service of [...this.#watches.keys()]) this.unwatch(service);
    if (this.#sampler) clearInterval(this.#sampler);
    this.#sampler = undefined;
  }

  #scheduleProbe(service: WatchedService, watch: Watch, intervalMs: number): void {
    watch.probeTimer = setTimeout(() => void this.#probe(service, watch, intervalMs), intervalMs);
    watch.probeTimer.unref();
  }

  async #probe(service: WatchedService, watch: Watch, intervalMs: number): Promise<void> {
    watch.probeTimer = undefined;
    const check = service.definition.ready;
    const config = service.definition.unresponsive;
    if (!watch.current() || !service.handle || !check || !config) return;
    const abort = new AbortController();
    try {
      await waitUntilReady(
        { ...check, timeoutMs: Math.min(check.timeoutMs, LIVENESS_PROBE_TIMEOUT_MS) },
        { signal: abort.signal, logLines: () => () => undefined, listenerOwner: (port, answered) => this.#options.listenerOwner(service, port, answered) },
      );
      watch.probeFailures = 0;
      if (!this.#cpuPinned(service, watch)) this.#options.onResponsive(service);
    } catch {
      if (!watch.current()) return;
      watch.probeFailures++;
      if (watch.probeFailures >= config.probeFailures) this.#options.onUnresponsive(service, `readiness check failed ${watch.probeFailures} times in a row`);
    }
    if (watch.current() && service.handle && this.#watches.get(service) === watch) this.#scheduleProbe(service, watch, intervalMs);
  }

  #sampleAll(): void {
    const now = Date.now();
    let watching = false;
    for (const [service, watch] of this.#watches) {
      const window = service.definition.unresponsive?.cpuWindowMs;
      if (window === undefined || !service.handle || !watch.current()) continue;
      watching = true;
      const usage = readUsage(service.handle.members());
      watch.cpuSamples.push({ at: now, cpuMs: usage.cpuMs });
      while (watch.cpuSamples.length > 1 && now - (watch.cpuSamples[1] as CpuSample).at >= window) watch.cpuSamples.shift();
      if (this.#cpuPinned(service, watch)) this.#options.onUnresponsive(service, `CPU at 100% for ${window} ms`);
      else if (watch.probeFailures === 0) this.#options.onResponsive(service);
    }
    if (!watching && this.#sampler) {
      clearInterval(this.#sampler);
      this.#sampler = undefined;
    }
  }

  /** Pinned: over a span at least as long as the window, the tree used (nearly) one whole CPU. */
  #cpuPinned(service: WatchedService, watch: Watch): boolean {
    const window = service.definition.unresponsive?.cpuWindowMs;
    const first = watch.cpuSamples[0];
    const last = watch.cpuSamples[watch.cpuSamples.length - 1];
    if (window === undefined || !first || !last || last.at - first.at < window) return false;
    return (last.cpuMs - first.cpuMs) / (last.at - first.at) >= PINNED_SHARE;
  }
}
