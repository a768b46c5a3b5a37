export { ProcessManager, type ManagerOptions, type ManagerEvents } from './manager/process-manager.js';
export { ProcessHandle } from './manager/process-handle.js';
export { TendError, isTendError, errorCodes, type ErrorCode } from './core/errors.js';
export type {
  ProcessSpec,
  NormalizedSpec,
  ProcessStatus,
  ProcessState,
  FinalStatus,
  StopOptions,
  StopResult,
  StrategyName,
  StrategyChoice,
  StdioMode,
} from './core/types.js';
export { MARKER_VARIABLE, isFinal } from './core/types.js';
export type { SignalName } from './core/signals.js';
export { detect, type Capabilities, type StrategySupport } from './platform/detect.js';
export type { ConfigurationPlugin, PluginWarning } from './plugins/plugin.js';
export { nodeVersionPlugin, detectPlugins } from './plugins/node-version.js';
export type { ProcessTable, ProcEntry } from './platform/proc-table.js';
export { recoverStateDir, type RecoveryReport, type RecoveredTree } from './registry/recover.js';
export { resolveStateDir } from './registry/state-dir.js';
export type { ProcessRecord } from './registry/records.js';
