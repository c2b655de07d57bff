// Writes an image folder: chunk payloads into packs in the order they are appended (the stream order is the
// caller's input), then the manifest and image.json. Everything is written under a staging folder beside the
// target and renamed into place at the end, so an interrupted write never leaves a valid-looking image.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, rmdir, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { EngineError } from '../errors.js';
import {
  IMAGE_FORMAT_VERSION,
  IMAGE_JSON_FORMAT,
  IMAGE_JSON_NAME,
  MANIFEST_PREFIX,
  MANIFEST_SUFFIX,
  NAME_HASH_HEX_CHARS,
  PACK_HEADER_BYTES,
  PACK_MAGIC,
  PACK_SUFFIX,
  PACKS_DIR,
} from '../format/constants.js';
import type { ImageJson } from '../format/image-json.js';
import { encodeManifest } from '../format/manifest.js';
import type { ChunkEntry, Codec, Manifest, PackEntry } from '../format/types.js';

/** Pack bytes allowed to be queued for writing before flush() waits. */
const MAX_WRITE_BACKLOG_BYTES = 16 * 1024 * 1024;

function packHeader(): Uint8Array {
  const h = new Uint8Array(PACK_HEADER_BYTES);
  h.set(PACK_MAGIC, 0);
  new DataView(h.buffer).setUint16(4, IMAGE_FORMAT_VERSION, true);
  return h;
}

/**
 * Appends stored chunks in stream order and produces the image. Usage: `create` → `append`* → `finish` (or
 * `abort`). Chunks are never deduplicated here: callers append each distinct chunk once.
 */
export class ImageWriter {
  readonly chunks: ChunkEntry[] = [];
  readonly packs: PackEntry[] = [];
  private pack?: { fh: FileHandle; tmpPath: string; size: number; nameHash: ReturnType<typeof createHash>; pending: Uint8Array[] };
  private packSeq = 0;
  private writing: Promise<void> = Promise.resolve();
  private backlogBytes = 0;
  /** Packs being flushed to disk (syncPacks) and closed in the background; finish() waits for them. */
  private closing: Array<Promise<void>> = [];

  private constructor(
    readonly outDir: string,
    readonly stagingDir: string,
    private readonly packSizeBytes: number,
    private readonly syncPacks: boolean,
  ) {}

  /**
   * Prepares a staging folder. Throws EngineError 'output-exists' when outDir exists and is not empty.
   * `syncPacks`: each finished pack is flushed to disk (fdatasync) in the background while the next fills, so a
   * caller that must store the image durably (a server's depot) finds its bytes already on disk.
   */
  static async create(outDir: string, packSizeBytes: number, opts: { syncPacks?: boolean } = {}): Promise<ImageWriter> {
    const target = resolve(outDir);
    let entries: string[] | undefined;
    try {
      entries = await readdir(target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new EngineError('output-exists', `output path is not a usable folder: ${target}`);
      entries = undefined;
    }
    if (entries && entries.length > 0) throw new EngineError('output-exists', `output folder is not empty: ${target}`);
    await mkdir(dirname(target), { recursive: true });
    const staging = `${target}.building-${randomBytes(6).toString('hex')}`;
    await mkdir(join(staging, PACKS_DIR), { recursive: true });
    return new ImageWriter(target, staging, packSizeBytes, opts.syncPacks ?? false);
  }

  /** Appends one stored payload; returns its chunk index. Payload bytes are copied or written before the next await resolves. */
  async append(hash: Uint8Array, codec: Codec, rawSizeBytes: number, payload: Uint8Array): Promise<number> {
    if (!this.pack) await this.openPack();
    const p = this.pack!;
    const entry: ChunkEntry = { hash: hash.slice(), rawSizeBytes, storedSizeBytes: payload.length, codec, pack: this.packs.length, offset: p.size };
    p.pending.push(payload);
    p.size += payload.length;
    const meta = Buffer.allocUnsafe(5);
    meta[0] = codec;
    meta.writeUInt32LE(payload.length, 1);
    p.nameHash.update(entry.hash).update(meta);
    this.chunks.push(entry);
    if (p.size >= this.packSizeBytes) await this.closePack();
    return this.chunks.length - 1;
  }

  /**
   * Starts writing buffered payloads in the background (in order) and returns at once unless more than
   * MAX_WRITE_BACKLOG_BYTES are still being written. Call at least once per batch so buffered bytes stay bounded.
   * A write error surfaces from a later flush, closePack or finish.
   */
  async flush(): Promise<void> {
    const p = this.pack;
    if (p && p.pending.length > 0) {
      const bufs = p.pending;
      p.pending = [];
      const bytes = bufs.reduce((s, b) => s + b.length, 0);
      this.backlogBytes += bytes;
      this.writing = this.writing.then(async () => {
        await p.fh.writev(bufs);
        this.backlogBytes -= bytes;
      });
      this.writing.catch(() => undefined); // observed by the next awaiting call
    }
    if (this.backlogBytes > MAX_WRITE_BACKLOG_BYTES) await this.writing;
  }

  /**
   * Resolves when every payload handed to append() before this call has been written (or its write failed:
   * the error surfaces elsewhere). After that the caller may reuse those payloads' memory.
   */
  async written(): Promise<void> {
    await this.flush();
    await this.writing.catch(() => undefined);
  }

  private async drainWrites(): Promise<void> {
    await this.flush();
    await this.writing;
  }

  private async openPack(): Promise<void> {
    const tmpPath = join(this.stagingDir, PACKS_DIR, `.pack-${this.packSeq++}.tmp`);
    const fh = await open(tmpPath, 'w');
    const header = packHeader();
    const nameHash = createHash('sha256').update(header);
    this.pack = { fh, tmpPath, size: header.length, nameHash, pending: [header] };
  }

  private async closePack(): Promise<void> {
    const p = this.pack;
    if (!p) return;
    await this.drainWrites();
    this.pack = undefined;
    if (this.syncPacks) {
      const closed = p.fh.datasync().finally(() => p.fh.close());
      closed.catch(() => undefined); // observed by finish() or abort()
      this.closing.push(closed);
    } else {
      await p.fh.close();
    }
    // Content-addressed: the name hashes the header and, per chunk, its raw-content hash, codec and stored size.
    // Two packs with one name hold the same chunks at the same offsets, each verifiable by its hash.
    const name = p.nameHash.digest('hex').slice(0, NAME_HASH_HEX_CHARS) + PACK_SUFFIX;
    await rename(p.tmpPath, join(this.stagingDir, PACKS_DIR, name));
    this.packs.push({ name, sizeBytes: p.size });
  }

  /**
   * Closes the last pack, writes the manifest (files + chunks + packs) and image.json, and moves the image into
   * outDir. Returns the manifest and its image.json.
   */
  async finish(base: Omit<Manifest, 'chunks' | 'packs' | 'formatVersion'>): Promise<{ manifest: Manifest; imageJson: ImageJson; manifestBytes: number }> {
    await this.closePack();
    await Promise.all(this.closing);
    const manifest: Manifest = { formatVersion: IMAGE_FORMAT_VERSION, ...base, chunks: this.chunks, packs: this.packs };
    const bytes = encodeManifest(manifest);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const manifestName = `${MANIFEST_PREFIX}${sha.slice(0, NAME_HASH_HEX_CHARS)}${MANIFEST_SUFFIX}`;
    await writeFile(join(this.stagingDir, manifestName), bytes);
    let rawBytes = 0;
    let fileCount = 0;
    for (const f of manifest.files) {
      rawBytes += f.sizeBytes;
      if (f.type === 'file') fileCount++;
    }
    const imageJson: ImageJson = {
      format: IMAGE_JSON_FORMAT,
      formatVersion: IMAGE_FORMAT_VERSION,
      manifest: { name: manifestName, sha256: sha, sizeBytes: bytes.length },
      rawBytes,
      storedBytes: this.packs.reduce((s, p) => s + p.sizeBytes, 0),
      chunkCount: this.chunks.length,
      fileCount,
      packCount: this.packs.length,
    };
    // image.json last: an image folder without it is not an image.
    await writeFile(join(this.stagingDir, IMAGE_JSON_NAME), JSON.stringify(imageJson, null, 2) + '\n');
    await rmdir(this.outDir).catch(() => undefined); // an empty target folder may exist
    await rename(this.stagingDir, this.outDir);
    return { manifest, imageJson, manifestBytes: bytes.length };
  }

  /** Removes the staging folder (after a failure). */
  async abort(): Promise<void> {
    await this.writing.catch(() => undefined);
    await Promise.allSettled(this.closing);
    if (this.pack) await this.pack.fh.close().catch(() => undefined);
    this.pack = undefined;
    await rm(this.stagingDir, { recursive: true, force: true });
  }
}
