// Generated builds as tars, through the engine's one tar writer (tar/tar-writer.ts): regular files
// and their parent directories, fixed owner and mtime so the same folder always gives the same bytes.
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

import { packTar, type TarWriteEntry } from '@rockit/engine';

/** Fixed mtime of every entry (2026-01-01T00:00:00Z): tar bytes depend on content only. */
export const TAR_MTIME_UNIX_SECONDS = 1_767_225_600;

export interface TarFile {
  /** Relative '/'-separated path. */
  path: string;
  mode: number;
  sizeBytes: number;
}

/**
 * Writes `tarPath` holding the given files of folder `root` (and their parent directories, each
 * once, before their first file). Entries go in the given order; `onBytes` is told the file
 * content bytes as they are read.
 */
export async function writeTar(root: string, files: readonly TarFile[], tarPath: string, onBytes: (n: number) => void = () => {}): Promise<void> {
  const entries: TarWriteEntry[] = [];
  const dirs = new Set<string>();
  const common = { mtime: TAR_MTIME_UNIX_SECONDS };
  for (const f of files) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (dirs.has(d)) continue;
      dirs.add(d);
      entries.push({ ...common, name: d, type: 'directory', source: join(root, ...parts.slice(0, i)), size: 0, mode: 0o755 });
    }
    entries.push({ ...common, name: f.path, type: 'file', source: join(root, ...parts), size: f.sizeBytes, mode: f.mode });
  }
  await pipeline(packTar(entries, onBytes), createWriteStream(tarPath));
}
