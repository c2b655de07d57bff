// The folder store's file-system plumbing: errno mapping, durable small writes and folder syncs,
// folder creation that survives a concurrent prune. Shared by fs-blob-store.ts and fs-multipart.ts.
import { mkdir, open, rename, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';
import { StorageError } from './storage-error.js';

/** Attempts to recreate a folder that a concurrent delete removed (pruned) under a put. */
export const MKDIR_RETRIES = 5;

export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/** Maps a Node.js fs error to a StorageError naming the key (never the absolute path). */
export function mapFsError(err: unknown, op: string, key: string): StorageError {
  if (err instanceof StorageError) return err;
  const code = errnoCode(err);
  const what = `${op} ${key}`;
  switch (code) {
    case 'ENOENT':
      return new StorageError('not-found', `${what}: no such object`);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new StorageError('access-denied', `${what}: the store folder refuses writes (${code})`);
    case 'ENOTDIR':
    case 'EISDIR':
    case 'EEXIST':
      return new StorageError('conflict', `${what}: another key occupies this path (${code})`);
    case 'ABORT_ERR':
      return new StorageError('aborted', `${what}: aborted`);
    default:
      if (err instanceof Error && err.name === 'AbortError') return new StorageError('aborted', `${what}: aborted`);
      return new StorageError('io', `${what}: ${code ?? (err instanceof Error ? err.message : String(err))}`);
  }
}

/**
 * A writable that appends to an open file and reports the running total after each completed
 * write (the reason it is not `handle.createWriteStream()`). Leaves the handle open.
 */
export function fileSink(handle: FileHandle, onProgress?: (bytesStored: number) => void): Writable {
  let total = 0;
  return new Writable({
    highWaterMark: 256 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      void (async () => {
        let offset = 0;
        while (offset < chunk.length) {
          const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
          offset += bytesWritten;
        }
        total += chunk.length;
        onProgress?.(total);
      })().then(() => callback(), callback);
    },
  });
}

/** Writes all of `body` at `position` of an open file. */
export async function writeAt(handle: FileHandle, body: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < body.length) {
    const { bytesWritten } = await handle.write(body, done, body.length - done, position + done);
    done += bytesWritten;
  }
}

/** A store's root folder and whether it flushes to disk: where objects and uploads are written durably. */
export class FsDisk {
  constructor(
    readonly root: string,
    readonly fsync: boolean,
  ) {}

  /**
   * Creates the folder for a new object; failures of the root itself become `access-denied`.
   * A concurrent delete may prune a parent folder while `mkdir -p` walks down: retried.
   */
  async ensureDir(dir: string, key: string): Promise<void> {
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await mkdir(dir, { recursive: true });
          return;
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT' || attempt >= MKDIR_RETRIES) throw err;
        }
      }
    } catch (err) {
      const rootUsable = await stat(this.root).then((s) => s.isDirectory(), () => false);
      if (!rootUsable) {
        throw new StorageError('access-denied', `put ${key}: the store folder cannot be created or used (not writable, or a path component is a file)`);
      }
      throw mapFsError(err, 'put', key);
    }
  }

  /** Renames a finished file onto `target`, creating its folder (again, if a concurrent delete prunes it). */
  async renameIntoPlace(source: string, target: string, key: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      await this.ensureDir(dirname(target), key);
      try {
        await rename(source, target);
        return;
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT' || attempt >= MKDIR_RETRIES) throw err;
      }
    }
  }

  /** Creates (or replaces) a small file with `content`, flushed to disk when the store fsyncs. */
  async writeDurably(path: string, content: string): Promise<void> {
    const handle = await open(path, 'w');
    try {
      await handle.writeFile(content);
      if (this.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Flushes a folder's entries (new, renamed or removed names) when the store fsyncs. */
  async syncDir(dir: string): Promise<void> {
    if (!this.fsync) return;
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
