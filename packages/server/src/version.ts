import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as engine from '@rockit/engine';
import type { Versions } from './http/routes/srv.routes.js';

const readVersion = (file: string | URL): string => {
  try {
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
};

/** A format version the engine exports, or 0 while the engine does not export it yet. */
const engineConstant = (name: string): number => {
  const v = (engine as Record<string, unknown>)[name];
  return typeof v === 'number' ? v : 0;
};

/** Versions reported by GET /srv/v1/versions. */
export function currentVersions(): Versions {
  let engineVersion = 'unknown';
  try {
    const main = createRequire(import.meta.url).resolve('@rockit/engine');
    engineVersion = readVersion(path.join(path.dirname(main), '..', 'package.json'));
  } catch {
    // engine not resolvable as a package (should not happen in a workspace install)
  }
  return {
    edge: readVersion(new URL('../package.json', import.meta.url)),
    engine: engineVersion,
    api: 'v1',
    formats: {
      dxf: engineConstant('IMAGE_FORMAT_VERSION'),
      patch: engineConstant('PATCH_POINTER_VERSION'),
      trace: engineConstant('TRACE_FORMAT_VERSION'),
    },
  };
}
