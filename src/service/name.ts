/** What a service may be called: one rule for tend.yaml, the command line, the wire and the disk (a name is a file name there). */
export const SERVICE_NAME_PATTERN = /^[A-Za-z0-9._@-]{1,64}$/;

export const SERVICE_NAME_RULE = '1-64 letters, digits, ".", "_", "-" or "@"';

export function isServiceName(value: unknown): value is string {
  return typeof value === 'string' && SERVICE_NAME_PATTERN.test(value);
}
