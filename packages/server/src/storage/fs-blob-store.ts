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
 *   (the root itself stays);
 * - a multipart upload is the folder `<root>/.rockit-tmp-multipart/<uploadId>` (outside the key
 *   space: reserved name) holding `key` (the key it is for), `data` (the object being assembled:
 *   each part written at its offset) and one empty file `part.<n>.<offset>.<size>.<sha256>` per
 *   stored part. A part record exists only while `data` holds those bytes there: `putPart` drops
 *   the records of the part it replaces and of every part its range overlaps before writing.
 *   `completeMultipart` checks the given list against the records, truncates `data` and renames it
 *   onto the key (the commit point; without `data` the upload is gone), then removes the folder.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import {
  assertPartNumber,
  assertValidKey,
  assertValidPrefix,
  checkExpectations,
  checkFileSize,
  checkPartList,
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
  type StoredPart,
} from './blob-store.js';
import { isStorageError, StorageError } from './storage-error.js';

export interface FsBlobStoreOptions {
  /** Absolute path of the store's folder; created on first write. */
  root: string;
  /** Flush each object to disk before it becomes visible (default true; tests may turn it off). */
  fsync?: boolean;
}

/** Attempts to recreate a folder that a concurrent delete removed (pruned) under a put. */
const MKDIR_RETRIES = 5;

/** Folder of the multipart uploads, directly under the root; its reserved name keeps it out of `list`. */
const MULTIPART_DIR = `${RESERVED_SEGMENT_PREFIX}-multipart`;
/** Upload ids are 16 random bytes in lower-case hex; nothing else is ever joined into a path. */
const UPLOAD_ID = /^[0-9a-f]{32}$/;
const UPLOAD_KEY_FILE = 'key';
const UPLOAD_DATA_FILE = 'data';
const PART_RECORD = /^part\.(\d+)\.(\d+)\.(\d+)\.([0-9a-f]{64})$/;

/** What the fs store knows of a stored part: where it lies in the upload's `data` file. */
interface PartRecord {
  partNumber: number;
  offset: number;
  sizeBytes: number;
  /** sha256 hex of the part's bytes. */
  etag: string;
}

function partRecordName(r: PartRecord): string {
  return `part.${r.partNumber}.${r.offset}.${r.sizeBytes}.${r.etag}`;
}

function parsePartRecord(name: string): (PartRecord & { name: string }) | undefined {
  const m = PART_RECORD.exec(name);
  return m ? { name, partNumber: Number(m[1]), offset: Number(m[2]), sizeBytes: Number(m[3]), etag: m[4] } : undefined;
}

/** Whether two records' byte ranges share a byte (empty ranges share none). */
function overlaps(a: PartRecord, b: PartRecord): boolean {
  return a.offset < b.offset + b.sizeBytes && b.offset < a.offset + a.sizeBytes;
}

function noSuchUpload(op: string, key: string): StorageError {
  return new StorageError('not-found', `${op} ${key}: no such multipart upload (unknown, completed or aborted)`);
}

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

/** Writes all of `body` at `position` of an open file. */
async function writeAt(handle: FileHandle, body: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < body.length) {
    const { bytesWritten } = await handle.write(body, done, body.length - done, position + done);
    done += bytesWritten;
  }
}

/** Like `mapFsError`, but a missing file or folder means the upload is gone: `not-found`. */
function multipartError(err: unknown, op: string, key: string): StorageError {
  const code = errnoCode(err);
  if (code === 'ENOENT' || code === 'ENOTDIR') return noSuchUpload(op, key);
  return mapFsError(err, op, key);
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

  /**
   * Hard-links `path` into place (a temporary name, then a rename over the target, so readers
   * never see a partial object); copies through `put` when linking is impossible (another file
   * system, a store that refuses links).
   */
  async putFile(key: string, path: string, options?: { signal?: AbortSignal; expectedSizeBytes?: number }): Promise<{ sizeBytes: number }> {
    assertValidKey(key);
    const target = this.pathOf(key);
    const dir = dirname(target);
    const tmp = join(dir, `${RESERVED_SEGMENT_PREFIX}-${randomBytes(8).toString('hex')}`);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (err) {
      throw mapFsError(err, 'putFile', key);
    }
    checkFileSize(size, options?.expectedSizeBytes, key);
    try {
      if (options?.signal?.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
      await this.ensureDir(dir, key);
      await link(path, tmp);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EXDEV' || code === 'EPERM' || code === 'ENOTSUP' || code === 'EMLINK' || code === 'EOPNOTSUPP') {
        const { sizeBytes } = await this.put(key, createReadStream(path, { highWaterMark: 1024 * 1024 }), {
          ...(options?.signal ? { signal: options.signal } : {}), expectedSizeBytes: size,
        });
        return { sizeBytes };
      }
      throw mapFsError(err, 'putFile', key);
    }
    try {
      if (this.fsync) {
        // The bytes may never have been flushed by whoever wrote them.
        const handle = await open(tmp, 'r');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      await rename(tmp, target);
      await this.syncDir(dir);
      return { sizeBytes: size };
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw mapFsError(err, 'putFile', key);
    }
  }

  localFile(key: string): string {
    assertValidKey(key);
    return this.pathOf(key);
  }

  /** The upload id is 32 lower-case hex digits; the content type is not kept (as with `put`). */
  async createMultipart(key: string, _options?: { contentType?: string }): Promise<string> {
    assertValidKey(key);
    const uploadId = randomBytes(16).toString('hex');
    const parent = join(this.root, MULTIPART_DIR);
    const dir = join(parent, uploadId);
    try {
      await this.ensureDir(parent, key);
      await mkdir(dir);
      await this.writeDurably(join(dir, UPLOAD_KEY_FILE), key);
      // `data` last: its presence is what makes the upload exist.
      await this.writeDurably(join(dir, UPLOAD_DATA_FILE), '');
      await this.syncDir(dir);
      await this.syncDir(parent);
      return uploadId;
    } catch (err) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw mapFsError(err, 'createMultipart', key);
    }
  }

  /** The part's etag is the sha256 hex of its bytes. A bad `offset` is `integrity`. */
  async putPart(key: string, uploadId: string, part: { partNumber: number; offset: number; body: Buffer }): Promise<StoredPart> {
    assertValidKey(key);
    assertPartNumber(part.partNumber, key);
    if (!Number.isSafeInteger(part.offset) || part.offset < 0) {
      throw new StorageError('integrity', `${key}: part ${part.partNumber} has an invalid offset ${part.offset}`);
    }
    const dir = await this.uploadDir(uploadId, 'putPart', key);
    const record: PartRecord = {
      partNumber: part.partNumber,
      offset: part.offset,
      sizeBytes: part.body.length,
      etag: createHash('sha256').update(part.body).digest('hex'),
    };
    try {
      await this.dropRecordsReplacedBy(dir, record);
      const handle = await open(join(dir, UPLOAD_DATA_FILE), 'r+');
      try {
        await writeAt(handle, part.body, part.offset);
        if (this.fsync) await handle.sync();
      } finally {
        await handle.close();
      }
      await this.writeDurably(join(dir, partRecordName(record)), '');
      await this.syncDir(dir);
    } catch (err) {
      throw multipartError(err, 'putPart', key);
    }
    return { partNumber: record.partNumber, etag: record.etag, sizeBytes: record.sizeBytes };
  }

  async completeMultipart(key: string, uploadId: string, parts: StoredPart[]): Promise<{ sizeBytes: number }> {
    assertValidKey(key);
    const sizeBytes = checkPartList(parts, key);
    const dir = await this.uploadDir(uploadId, 'completeMultipart', key);
    const data = join(dir, UPLOAD_DATA_FILE);
    const target = this.pathOf(key);
    try {
      await this.checkAgainstRecords(dir, parts, key);
      const handle = await open(data, 'r+');
      try {
        await handle.truncate(sizeBytes);
        if (this.fsync) await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (err) {
      throw multipartError(err, 'completeMultipart', key);
    }
    try {
      await this.renameIntoPlace(data, target, key);
    } catch (err) {
      throw mapFsError(err, 'completeMultipart', key);
    }
    // The object is in place; a folder left behind by a failure here holds no `data` and is inert.
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    return { sizeBytes };
  }

  /** Folders of `.rockit-tmp-multipart` that still hold their `data` file; started = the `key` file's time. */
  async *listMultipart(): AsyncIterable<{ key: string; uploadId: string; startedMs: number }> {
    const parent = join(this.root, MULTIPART_DIR);
    let ids: string[];
    try {
      ids = await readdir(parent);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw mapFsError(err, 'listMultipart', MULTIPART_DIR);
    }
    for (const uploadId of ids) {
      if (!UPLOAD_ID.test(uploadId)) continue;
      const dir = join(parent, uploadId);
      try {
        const [key, started] = await Promise.all([readFile(join(dir, UPLOAD_KEY_FILE), 'utf8'), stat(join(dir, UPLOAD_KEY_FILE))]);
        await stat(join(dir, UPLOAD_DATA_FILE));
        yield { key, uploadId, startedMs: started.mtimeMs };
      } catch {
        // Completed or aborted meanwhile, or a folder left inert by an interrupted completion.
        continue;
      }
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    assertValidKey(key);
    let dir: string;
    try {
      dir = await this.uploadDir(uploadId, 'abortMultipart', key);
    } catch (err) {
      if (isStorageError(err, 'not-found')) return;
      throw err;
    }
    try {
      await rm(dir, { recursive: true, force: true });
    } catch (err) {
      throw mapFsError(err, 'abortMultipart', key);
    }
  }

  /**
   * The folder of upload `uploadId` after checking that it exists and is for `key`; `not-found`
   * otherwise (a malformed id included: it is checked before any path is built).
   */
  private async uploadDir(uploadId: string, op: string, key: string): Promise<string> {
    if (typeof uploadId !== 'string' || !UPLOAD_ID.test(uploadId)) throw noSuchUpload(op, key);
    const dir = join(this.root, MULTIPART_DIR, uploadId);
    let storedKey: string;
    try {
      storedKey = await readFile(join(dir, UPLOAD_KEY_FILE), 'utf8');
    } catch (err) {
      throw multipartError(err, op, key);
    }
    if (storedKey !== key) throw noSuchUpload(op, key);
    return dir;
  }

  private async partRecords(dir: string): Promise<(PartRecord & { name: string })[]> {
    const names = await readdir(dir);
    return names.map(parsePartRecord).filter((r) => r !== undefined);
  }

  /** Removes the records of the same part number and of every part whose bytes `record` will overwrite. */
  private async dropRecordsReplacedBy(dir: string, record: PartRecord): Promise<void> {
    const stale = (await this.partRecords(dir)).filter((r) => r.partNumber === record.partNumber || overlaps(r, record));
    for (const r of stale) await rm(join(dir, r.name), { force: true });
    if (stale.length > 0) await this.syncDir(dir);
  }

  /** `integrity` unless every listed part was stored with that size and etag, at the offset the list implies. */
  private async checkAgainstRecords(dir: string, parts: StoredPart[], key: string): Promise<void> {
    const records = await this.partRecords(dir);
    let offset = 0;
    for (const part of parts) {
      const stored = records.some(
        (r) => r.partNumber === part.partNumber && r.offset === offset && r.sizeBytes === part.sizeBytes && r.etag === part.etag,
      );
      if (!stored) {
        throw new StorageError('integrity', `completeMultipart ${key}: part ${part.partNumber} was not stored with that size and etag at offset ${offset}`);
      }
      offset += part.sizeBytes;
    }
  }

  /** Renames a finished file onto `target`, creating its folder (again, if a concurrent delete prunes it). */
  private async renameIntoPlace(source: string, target: string, key: string): Promise<void> {
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
  private async writeDurably(path: string, content: string): Promise<void> {
    const handle = await open(path, 'w');
    try {
      await handle.writeFile(content);
      if (this.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Flushes a folder's entries (new, renamed or removed names) when the store fsyncs. */
  private async syncDir(dir: string): Promise<void> {
    if (!this.fsync) return;
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  describe(): BlobStoreDescription {
    return {
      kind: 'fs',
      location: pathToFileURL(this.root).href,
      capabilities: { multipartUpload: true, keyMayPrefixOtherKeys: false },
    };
  }

  async close(): Promise<void> {}
}

export function createFsBlobStore(options: FsBlobStoreOptions): FsBlobStore {
  return new FsBlobStore(options);
}
