// A folder as build input: the same entries a tar of it would give, in a deterministic order
// (depth-first, names sorted by their UTF-8 bytes). Hard links are detected by (device, inode).
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { TarError } from '../errors.js';
import type { InputEntry } from './input-entry.js';

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Walks `root` (not included). Throws TarError 'read-failed' when the folder cannot be read. */
export async function* walkFolder(root: string): AsyncGenerator<InputEntry> {
  const seenInodes = new Map<string, string>();
  async function* walk(rel: string): AsyncGenerator<InputEntry> {
    let names: string[];
    try {
      names = await readdir(rel === '' ? root : join(root, rel));
    } catch (err) {
      throw new TarError('read-failed', rel || '.', `cannot read folder ${JSON.stringify(rel || '.')}: ${(err as Error).message}`);
    }
    names.sort(byteOrder);
    for (const name of names) {
      const relPath = rel === '' ? name : `${rel}/${name}`;
      const abs = join(root, relPath);
      const st = await lstat(abs);
      const base = { name: relPath, mode: st.mode & 0o7777, sizeBytes: 0, linkTarget: '' };
      if (st.isDirectory()) {
        yield { ...base, type: 'dir', detectedType: 'directory' };
        yield* walk(relPath);
      } else if (st.isSymbolicLink()) {
        yield { ...base, type: 'symlink', detectedType: 'symlink', linkTarget: await readlink(abs) };
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seenInodes.get(key) : undefined;
        if (first !== undefined) {
          yield { ...base, type: 'hardlink', detectedType: 'link', linkTarget: first };
          continue;
        }
        if (st.nlink > 1) seenInodes.set(key, relPath);
        yield {
          ...base,
          type: 'file',
          detectedType: 'file',
          sizeBytes: st.size,
          // Opened on first read, so an entry that is refused and never read holds no file descriptor.
          content: (async function* () {
            yield* createReadStream(abs, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Uint8Array>;
          })(),
        };
      } else {
        const kind = st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'character-device' : st.isBlockDevice() ? 'block-device' : 'unknown';
        yield { ...base, type: 'other', detectedType: kind };
      }
    }
  }
  yield* walk('');
}
