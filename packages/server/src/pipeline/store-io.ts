// Small streaming helpers between blob stores and local folders, shared by the pipeline steps.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { throwIfAborted } from './errors.js';
import type { BlobStore } from '../storage/blob-store.js';

/** Opens a whole object as a stream (StorageError `not-found` when missing). */
export async function openRead(store: BlobStore, key: string): Promise<Readable> {
  return (await store.get(key)).body;
}

/** Deletes an object, ignoring every failure (best-effort cleanup after another error). */
export async function deleteQuietly(store: BlobStore, key: string): Promise<void> {
  try {
    await store.delete(key);
  } catch {
    // The original failure is what the caller reports.
  }
}

/** One file of a local folder, with its '/'-separated path relative to the folder. */
export interface LocalFile {
  relPath: string;
  absPath: string;
  sizeBytes: number;
}

/** Every regular file under `root`, sorted by relative path (deterministic upload order). */
export async function listLocalFiles(root: string): Promise<LocalFile[]> {
  const out: LocalFile[] = [];
  async function walk(dir: string): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      const abs = join(dir, e.name);
      if (e.isDirectory()) await walk(abs);
      else if (e.isFile()) {
        const st = await stat(abs);
        out.push({ relPath: relative(root, abs).split(sep).join('/'), absPath: abs, sizeBytes: st.size });
      }
    }
  }
  await walk(root);
  return out.sort((a, b) => (a.relPath < b.relPath ? -1 : a.relPath > b.relPath ? 1 : 0));
}

/**
 * Downloads every object under `prefix` into `destDir` (keys relative to the prefix become paths).
 * Writes into a unique `destDir + '.partial-…'` folder and renames at the end, so `destDir` exists only complete.
 * Keys that would escape the folder are refused. Returns the number of files and bytes.
 */
export async function downloadPrefix(
  store: BlobStore,
  prefix: string,
  destDir: string,
  signal?: AbortSignal,
): Promise<{ files: number; sizeBytes: number }> {
  const partial = `${destDir}.partial-${randomBytes(6).toString('hex')}`;
  await mkdir(partial, { recursive: true });
  try {
  let files = 0;
  let sizeBytes = 0;
  for await (const obj of store.list(prefix)) {
    throwIfAborted(signal);
    const rel = obj.key.slice(prefix.length);
    if (rel === '' || rel.split('/').some((seg) => seg === '' || seg === '.' || seg === '..')) {
      throw new Error(`refusing object key outside its folder: ${obj.key}`);
    }
    const dest = join(partial, ...rel.split('/'));
    await mkdir(dirname(dest), { recursive: true });
    await pipeline(await openRead(store, obj.key), createWriteStream(dest), { signal });
    files += 1;
    sizeBytes += obj.sizeBytes;
  }
  await rm(destDir, { recursive: true, force: true });
  await mkdir(dirname(destDir), { recursive: true });
  await rename(partial, destDir);
  return { files, sizeBytes };
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
}

/**
 * Uploads a local folder to `prefix` so that the store's folder holds exactly the local files:
 * every file is written (the names listed in `last` after all others, in that order — pointer
 * files that must never name a missing file), then objects under the prefix that are not local
 * files are deleted. Idempotent. Returns the files and total bytes uploaded.
 */
export async function uploadFolderExact(
  store: BlobStore,
  localDir: string,
  prefix: string,
  options: { last?: string[]; signal?: AbortSignal } = {},
): Promise<{ files: number; sizeBytes: number }> {
  const local = await listLocalFiles(localDir);
  const last = options.last ?? [];
  const order = [
    ...local.filter((f) => !last.includes(f.relPath)),
    ...last.flatMap((name) => local.filter((f) => f.relPath === name)),
  ];
  let sizeBytes = 0;
  for (const f of order) {
    throwIfAborted(options.signal);
    await store.put(prefix + f.relPath, createReadStream(f.absPath));
    sizeBytes += f.sizeBytes;
  }
  const wanted = new Set(local.map((f) => prefix + f.relPath));
  const stale: string[] = [];
  for await (const obj of store.list(prefix)) if (!wanted.has(obj.key)) stale.push(obj.key);
  for (const key of stale) await store.delete(key);
  return { files: local.length, sizeBytes };
}
