/**
 * The rules a service's fields obey, each stated once: what it accepts, the
 * words for what was expected, and the fix. Every reader of a definition
 * (tend.yaml, the command line, the wire and the disk) applies these and only
 * frames the message its own way (file:line, --flag, JSON path).
 */
import { parseSignal, type SignalName } from '../core/signals.js';
import { strategyNames, type StrategyChoice } from '../core/types.js';
import { closest } from '../spawn/normalize-spec.js';
import { restartPolicies, type RestartPolicy } from './definition.js';
import { SERVICE_NAME_PATTERN, SERVICE_NAME_RULE } from './name.js';

export interface Rule<T> {
  /** What a valid value is, in words that fit after "expected". */
  readonly expected: string;
  /** The value, or undefined when it breaks the rule. */
  read(value: unknown): T | undefined;
  /** How to mend `value`, in words that fit every source. */
  fix(value: unknown): string;
}

/** A port is a number (a command line's "3000" is read as one first; a file's quoted "3000" is a string, and refused). */
export const port: Rule<number> = {
  expected: 'a port number from 1 to 65535',
  read: (value) => (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535 ? value : undefined),
  fix: () => 'Give the port as a whole number, e.g. 3000.',
};

const strategyChoices: readonly string[] = ['auto', ...strategyNames];

export const strategy: Rule<StrategyChoice> = {
  expected: `one of ${strategyChoices.join(', ')}`,
  read: (value) => (typeof value === 'string' && strategyChoices.includes(value) ? (value as StrategyChoice) : undefined),
  fix: (value) => didYouMean(value, strategyChoices) ?? 'Leave it out (auto picks the strongest this machine offers) or name one of these.',
};

export const restartPolicy: Rule<RestartPolicy> = {
  expected: `one of ${restartPolicies.join(', ')}`,
  read: (value) => (typeof value === 'string' && restartPolicies.includes(value as RestartPolicy) ? (value as RestartPolicy) : undefined),
  fix: (value) => didYouMean(value, restartPolicies) ?? 'Use on-failure (the default), never or always.',
};

export const serviceName: Rule<string> = {
  expected: `a service name (${SERVICE_NAME_RULE})`,
  read: (value) => (typeof value === 'string' && SERVICE_NAME_PATTERN.test(value) ? value : undefined),
  fix: () => 'Rename it; quote names that look like numbers.',
};

export const stopSignal: Rule<SignalName> = {
  expected: 'a signal name such as SIGTERM, SIGINT or SIGHUP, or its number',
  read: (value) => parseSignal(value),
  fix: () => 'Use a name such as SIGTERM, SIGINT or SIGHUP, or its number.',
};

function didYouMean(value: unknown, choices: readonly string[]): string | undefined {
  const suggestion = typeof value === 'string' ? closest(value, choices) : undefined;
  return suggestion === undefined ? undefined : `Did you mean ${suggestion}?`;
}
