import { TendError } from '../core/errors.js';
import type { ProcessSpec } from '../core/types.js';

/**
 * A plugin adjusts a spec before it is validated and started, e.g. to put the
 * Node version a project pins on its PATH. Plugins never see the manager's
 * environment unless the spec carries it.
 */
export interface ConfigurationPlugin {
  readonly name: string;
  /** Lower runs first; ties run in registration order. */
  readonly priority: number;
  isApplicable(spec: ProcessSpec): boolean;
  enhance(spec: ProcessSpec): ProcessSpec | Promise<ProcessSpec>;
}

export interface PluginWarning {
  readonly plugin: string;
  readonly message: string;
  readonly cause: unknown;
}

export function checkPlugin(plugin: unknown): asserts plugin is ConfigurationPlugin {
  const p = plugin as Partial<ConfigurationPlugin> | null;
  const name = p?.name;
  const fail = (reason: string): never => {
    throw new TendError('PLUGIN_INVALID', { name, reason });
  };
  if (typeof p !== 'object' || p === null) fail('it is not an object');
  if (typeof name !== 'string' || name === '') fail('`name` must be a non-empty string');
  if (typeof p?.priority !== 'number' || !Number.isFinite(p.priority)) fail('`priority` must be a finite number');
  if (typeof p?.isApplicable !== 'function') fail('`isApplicable` must be a function');
  if (typeof p?.enhance !== 'function') fail('`enhance` must be a function');
}

/** Plugins in deterministic order. */
export class PluginRegistry {
  readonly #plugins: { plugin: ConfigurationPlugin; order: number }[] = [];
  #registered = 0;

  register(plugin: ConfigurationPlugin): void {
    checkPlugin(plugin);
    this.#plugins.push({ plugin, order: this.#registered++ });
    this.#plugins.sort((a, b) => a.plugin.priority - b.plugin.priority || a.order - b.order);
  }

  get names(): string[] {
    return this.#plugins.map((p) => p.plugin.name);
  }

  /**
   * Runs every applicable plugin in order. A plugin that throws, or whose
   * output `validate` rejects, is skipped with a warning: the spec goes on as
   * it was before that plugin, so a broken plugin never stops a start.
   */
  async apply(spec: ProcessSpec, validate: (spec: ProcessSpec) => void, warn: (w: PluginWarning) => void): Promise<ProcessSpec> {
    let current = spec;
    for (const { plugin } of this.#plugins) {
      try {
        if (!plugin.isApplicable(current)) continue;
        const next = await plugin.enhance(structuredClone(current));
        validate(next);
        current = next;
      } catch (cause) {
        const message = `plugin "${plugin.name}" failed and was skipped: ${cause instanceof Error ? cause.message : String(cause)}`;
        warn({ plugin: plugin.name, message, cause });
      }
    }
    return current;
  }
}
