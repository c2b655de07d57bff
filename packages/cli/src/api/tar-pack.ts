// Lists a game folder for the tar the engine's writer (tar/tar-writer.ts) streams: directories,
// regular files and symbolic links (stored, not followed), sorted by name, parents before children,
// owner 0/0, mode and mtime (whole seconds) from the file. Anything else (sockets, devices, FIFOs)
// makes `listFolder` throw.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';

import type { TarWriteEntry } from '@rockit/engine';

/**
 * Lists a folder recursively in archive order (by name, parents before children). Throws if
 * `root` is not a folder or holds an entry that is not a file, folder or symlink.
 */
export async function listFolder(root: string): Promise<TarWriteEntry[]> {
  const rootStat = await fs.stat(root);
  if (!rootStat.isDirectory()) throw new Error(`${root} is not a folder`);
  const entries: TarWriteEntry[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const names = (await fs.readdir(dir)).sort(compareNames);
    for (const name of names) {
      const abs = path.join(dir, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      const st = await fs.lstat(abs);
      const common = { name: rel, source: abs, mode: st.mode & 0o7777, mtime: Math.max(0, Math.floor(st.mtimeMs / 1000)) };
      if (st.isDirectory()) {
        entries.push({ ...common, type: 'directory', size: 0 });
        await walk(abs, rel);
      } else if (st.isFile()) {
        entries.push({ ...common, type: 'file', size: st.size });
      } else if (st.isSymbolicLink()) {
        entries.push({ ...common, type: 'symlink', size: 0, linkname: await fs.readlink(abs) });
      } else {
        throw new Error(`cannot archive ${abs}: not a file, folder or symbolic link`);
      }
    }
  };
  await walk(root, '');
  return entries;
}

/** Byte-wise order of UTF-8 names, so the order does not depend on locale or UTF-16 quirks. */
function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A pass-through that drops the first `count` bytes (to resume an upload of a folder packed on the fly). */
export function skipBytes(count: number): Transform {
  let left = count;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (left >= chunk.length) {
        left -= chunk.length;
        return cb();
      }
      const rest = left > 0 ? chunk.subarray(left) : chunk;
      left = 0;
      cb(null, rest);
    },
  });
}
