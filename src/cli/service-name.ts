/** The rule for a service name on the command line: the one the daemon stores names by. */
import { SERVICE_NAME_PATTERN } from '../supervisor/service-store.js';
import { usageError } from './args.js';

export const SERVICE_NAME_RULE = 'Use 1-64 letters, digits, ".", "_", "-" or "@".';

/** `name` when it is a valid service name; a usage error naming `tend <command>` otherwise. */
export function checkName(name: string | undefined, command: string): string {
  if (name === undefined) throw usageError(`tend ${command}: no service name given`, `Usage: tend ${command} NAME ...`);
  if (!SERVICE_NAME_PATTERN.test(name)) throw usageError(`tend ${command}: invalid service name ${JSON.stringify(name)}`, SERVICE_NAME_RULE);
  return name;
}
