import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** A package.json with a name: the bundled CLI's directory holds a nameless one that only sets its module type. */
function isPackageRoot(dir: string): boolean {
  const path = join(dir, 'package.json');
  if (!existsSync(path)) return false;
  try {
    return typeof (JSON.parse(readFileSync(path, 'utf8')) as { name?: unknown }).name === 'string';
  } catch {
    return false;
  }
}

/**
 * The directory holding tend's package.json. Found by walking up from this
 * module, because the code runs both from dist/src/<feature>/ and bundled
 * into dist/src/bin/.
 */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6 && !isPackageRoot(dir); i++) dir = dirname(dir);
  root = dir;
  return root;
}
