/**
 * A blob store in a local folder: key `a/b/c` is the file `<root>/a/b/c`.
 *
 * Invariants:
 * - a put writes `<dir>/.rockit-tmp-<random>` in the target's own folder, flushes it to disk and
 *   renames it over the target, so readers see the old bytes or the new ones, never a mix; a
 *   failed put removes its temporary file;
 * - keys are validated (`assertValidKey`) before any path is built, so no key reaches outside the
 *   root; symbolic links inside the root are ignored by `list` and never followed by `list` or `deletePrefix`;
 * - folders are an implementation detail: created on put, removed when a delete empties them
 *   (the root itself stays).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import {
  assertValidKey,
  assertValidPrefix,
  checkExpectations,
  HashingStream,
  RESERVED_SEGMENT_PREFIX,
  resolveRange,
  type BlobListing,
  type BlobStore,
  type BlobStoreDescription,
  type ByteRange,
  type GetResult,
  type PutOptions,
  type PutResult,
} from './blob-store.js';
import { StorageError } from './storage-error.js';

export interface FsBlobStoreOptions {
  /** Absolute path of the store's folder; created on first write. */
  root: string;
  /** Flush each object to disk before it becomes visible (default true; tests may turn it off). */
  fsync?: boolean;
}

/** Attempts to recreate a folder that a concurrent delete removed (pruned) under a put. */
const MKDIR_RETRIES = 5;

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/** Maps a Node.js fs error to a StorageError naming the key (never the absolute path). */
function mapFsError(err: unknown, op: string, key: string): StorageError {
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
function fileSink(handle: FileHandle, onProgress?: (bytesStored: number) => void): Writable {
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

export class FsBlobStore implements BlobStore {
  private readonly root: string;
  private readonly fsync: boolean;

  constructor(options: FsBlobStoreOptions) {
    if (!isAbsolute(options.root)) {
      throw new StorageError('invalid-config', 'the folder of a file blob store must be an absolute path');
    }
    this.root = resolve(options.root);
    this.fsync = options.fsync ?? true;
  }

  private pathOf(key: string): string {
    return join(this.root, ...key.split('/'));
  }

  /**
   * Creates the folder for a new object; failures of the root itself become `access-denied`.
   * A concurrent delete may prune a parent folder while `mkdir -p` walks down: retried.
   */
  private async ensureDir(dir: string, key: string): Promise<void> {
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

  async put(key: string, body: Readable | Buffer, options?: PutOptions): Promise<PutResult> {
    assertValidKey(key);
    const target = this.pathOf(key);
    const dir = dirname(target);
    const tmp = join(dir, `${RESERVED_SEGMENT_PREFIX}-${randomBytes(8).toString('hex')}`);
    let handle: FileHandle | undefined;
    try {
      for (let attempt = 0; ; attempt++) {
        await this.ensureDir(dir, key);
        try {
          handle = await open(tmp, 'wx');
          break;
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT' || attempt >= MKDIR_RETRIES) throw err;
        }
      }
      const hasher = new HashingStream();
      const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
      await pipeline(source, hasher, fileSink(handle, options?.onProgress), { signal: options?.signal });
      if (this.fsync) await handle.sync();
      await handle.close();
      handle = undefined;
      const result = hasher.result();
      checkExpectations(result, options, key);
      await rename(tmp, target);
      return result;
    } catch (err) {
      if (!Buffer.isBuffer(body) && !body.destroyed) body.destroy();
      await handle?.close().catch(() => undefined);
      await rm(tmp, { force: true }).catch(() => undefined);
      throw mapFsError(err, 'put', key);
    }
  }

  async get(key: string, range?: ByteRange): Promise<GetResult> {
    assertValidKey(key);
    let handle: FileHandle;
    try {
      handle = await open(this.pathOf(key), 'r');
    } catch (err) {
      if (errnoCode(err) === 'ENOTDIR') throw new StorageError('not-found', `get ${key}: no such object`);
      throw mapFsError(err, 'get', key);
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new StorageError('not-found', `get ${key}: no such object`);
      const { start, end } = resolveRange(range, info.size, key);
      if (end < start) {
        await handle.close();
        return { body: Readable.from([]), sizeBytes: info.size, start, end };
      }
      return { body: handle.createReadStream({ start, end }), sizeBytes: info.size, start, end };
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw mapFsError(err, 'get', key);
    }
  }

  async head(key: string): Promise<{ sizeBytes: number } | null> {
    assertValidKey(key);
    try {
      const info = await stat(this.pathOf(key));
      return info.isFile() ? { sizeBytes: info.size } : null;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw mapFsError(err, 'head', key);
    }
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (err) {
      const code = errnoCode(err);
      // A folder or a missing path is "no object with that key", which delete accepts.
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return;
      throw mapFsError(err, 'delete', key);
    }
    await this.pruneEmptyDirs(dirname(path));
  }

  /** Removes `dir` and its parents while they are empty, stopping at the root. */
  private async pruneEmptyDirs(dir: string): Promise<void> {
    while (dir.startsWith(this.root + sep)) {
      try {
        await rmdir(dir);
      } catch {
        return;
      }
      dir = dirname(dir);
    }
  }

  async *list(prefix: string): AsyncIterable<BlobListing> {
    assertValidPrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    const baseKey = prefix.slice(0, slash + 1);
    yield* this.walk(baseKey, prefix);
  }

  /**
   * Yields files under the folder of `baseKey` (`''` or ending in `/`) whose keys start with
   * `prefix`, in ascending key order: sorting siblings by `name` for files and `name + '/'` for
   * folders orders whole subtrees exactly as their keys sort.
   */
  private async *walk(baseKey: string, prefix: string): AsyncIterable<BlobListing> {
    const dir = baseKey === '' ? this.root : this.pathOf(baseKey.slice(0, -1));
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw mapFsError(err, 'list', prefix);
    }
    const items = entries
      .filter((e) => !e.name.startsWith(RESERVED_SEGMENT_PREFIX) && (e.isFile() || e.isDirectory()))
      .map((e) => ({ sortKey: e.isDirectory() ? `${e.name}/` : e.name, name: e.name, isDir: e.isDirectory() }))
      .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    for (const item of items) {
      const key = baseKey + item.name;
      if (item.isDir) {
        const childBase = `${key}/`;
        if (childBase.startsWith(prefix) || prefix.startsWith(childBase)) yield* this.walk(childBase, prefix);
      } else if (key.startsWith(prefix)) {
        try {
          const info = await stat(this.pathOf(key));
          if (info.isFile()) yield { key, sizeBytes: info.size };
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') throw mapFsError(err, 'list', prefix);
        }
      }
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    assertValidPrefix(prefix);
    let count = 0;
    const dirs = new Set<string>();
    for await (const { key } of this.list(prefix)) {
      const path = this.pathOf(key);
      try {
        await unlink(path);
        count++;
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw mapFsError(err, 'delete', key);
      }
      dirs.add(dirname(path));
    }
    // Deepest first, so a parent is tried after its children are gone.
    for (const dir of [...dirs].sort((a, b) => b.length - a.length)) await this.pruneEmptyDirs(dir);
    return count;
  }

  describe(): BlobStoreDescription {
    return {
      kind: 'fs',
      location: pathToFileURL(this.root).href,
      capabilities: { multipartUpload: false, keyMayPrefixOtherKeys: false },
    };
  }

  async close(): Promise<void> {}
}

export function createFsBlobStore(options: FsBlobStoreOptions): FsBlobStore {
  return new FsBlobStore(options);
}
