// Where a piscina worker entry is: the compiled CommonJS entry beside the calling module in dist/, or — when the
// caller runs from TypeScript sources (vitest) — its compiled twin under dist/. Entries are CommonJS on purpose
// (see codec-worker-entry.cts).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The file `entryName` (e.g. `codec-worker-entry.cjs`) in the folder of the module at `moduleUrl`, or its twin
 * under dist/ when that module is a source under src/; undefined when neither exists (only sources present).
 */
export function resolveWorkerEntry(moduleUrl: string, entryName: string): string | undefined {
  const here = fileURLToPath(moduleUrl);
  const sibling = join(dirname(here), entryName);
  if (here.endsWith('.js') && existsSync(sibling)) return sibling;
  // Running from src/ (tests): use the build output if it exists.
  const inDist = sibling.replace(/([/\\])src([/\\])([^/\\]+)([/\\])([^/\\]+)$/, '$1dist$2$3$4$5');
  if (inDist !== sibling && existsSync(inDist)) return inDist;
  return undefined;
}
