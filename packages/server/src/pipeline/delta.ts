// Delta pushes (issue 13 item 4): which chunks of an app's kept builds the server has, and the
// dltar step that turns an uploaded delta (docs/FORMATS.md, "Delta") into the build's tar from those
// chunks. Chunks are found by their SHA-256 in the kept images' manifests and read from the depot,
// each decoded and verified on read; nothing of another app (let alone another org) is ever consulted.
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import {
  CodecPool, CorruptionError, DeltaError, EngineError, FolderImageSource, IMAGE_JSON_NAME, PACKS_DIR, assembleDelta, decodeOnPool, openImage,
  verifyChunk, type ImageSource, type InputLimits, type OpenedImage,
} from '@rockit/engine';

import type { BlobStore } from '../storage/blob-store.js';
import { imagePrefix, joinKey } from '../publish/layout.js';
import { StepError, canceledError, storageStep } from './errors.js';
import { deleteQuietly, openRead } from './store-io.js';

/** A kept build whose image may serve chunks. */
export interface KeptImage {
  buildId: number;
  dxfName: string;
}

export interface KeptChunksOptions {
  blobStore: BlobStore;
  /** Prefix of the depot inside the blob store ('' or e.g. 'cdn/'). */
  depotPrefix: string;
  orgName: string;
  appName: string;
  builds: readonly KeptImage[];
}

async function readAll(body: Readable, maxBytes: number, name: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > maxBytes) {
      body.destroy();
      throw new CorruptionError(name === IMAGE_JSON_NAME ? 'image-json' : 'manifest', name, `${name} is larger than ${maxBytes} bytes`);
    }
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

/** An image in the blob store (S3 or folder), read by ranges; missing objects are CorruptionErrors like a folder's. */
class BlobImageSource implements ImageSource {
  constructor(
    private readonly store: BlobStore,
    private readonly prefix: string,
  ) {}

  get location(): string {
    return this.prefix;
  }

  private async get(name: string, range?: { start: number; end: number }) {
    try {
      return await this.store.get(this.prefix + name, range);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'not-found') {
        throw new CorruptionError(name.startsWith(`${PACKS_DIR}/`) ? 'pack-missing' : name === IMAGE_JSON_NAME ? 'image-json' : 'manifest', name, `${name} is missing`);
      }
      throw err;
    }
  }

  async readFile(name: string, maxBytes: number): Promise<Uint8Array> {
    return readAll((await this.get(name)).body, maxBytes, name);
  }

  async readRange(name: string, offset: number, length: number): Promise<Uint8Array> {
    if (length === 0) return new Uint8Array(0);
    const got = await readAll((await this.get(name, { start: offset, end: offset + length - 1 })).body, length, name);
    if (got.length !== length) throw new CorruptionError('pack-truncated', name, `${name} ends before ${offset + length}`);
    return got;
  }

  async close(): Promise<void> {}
}

/** Opens an image of the depot: the folder itself when the store is local, else range reads. */
function depotImageSource(store: BlobStore, prefix: string): ImageSource {
  const local = store.localFile(prefix + IMAGE_JSON_NAME);
  return local !== null ? new FolderImageSource(dirname(local)) : new BlobImageSource(store, prefix);
}

/** Known manifests by the SHA-256 of their image.json (which names the manifest by its hash): loading one is the costly part. */
const manifestCache = new Map<string, Set<string>>();
const MANIFEST_CACHE_ENTRIES = 16;

/**
 * The chunks of an app's kept images. `open` reads each image's pointer and manifest (verified) and
 * checks that its packs exist; an image that is missing or damaged contributes nothing (its chunks
 * are not "known", so a client sends them). Chunk ids are lower-case hex SHA-256.
 */
export class KeptChunks {
  private constructor(
    private readonly images: OpenedImage[],
    private readonly where: Map<string, { img: number; chunk: number }>,
    private readonly pool?: CodecPool,
  ) {}

  static async open(o: KeptChunksOptions, pool?: CodecPool): Promise<KeptChunks> {
    const images: OpenedImage[] = [];
    const where = new Map<string, { img: number; chunk: number }>();
    for (const b of o.builds) {
      const prefix = joinKey(o.depotPrefix, imagePrefix(o.orgName, o.appName, b.buildId, b.dxfName));
      const src = depotImageSource(o.blobStore, prefix);
      let img: OpenedImage;
      try {
        img = await openImage(src);
        for (const p of img.manifest.packs) {
          if ((await o.blobStore.head(`${prefix}${PACKS_DIR}/${p.name}`)) === null) throw new CorruptionError('pack-missing', p.name, `${p.name} is missing`);
        }
      } catch (err) {
        await src.close();
        if (err instanceof EngineError) continue; // not usable: its chunks are simply not known
        throw err;
      }
      const k = images.push(img) - 1;
      img.manifest.chunks.forEach((c, i) => {
        const id = Buffer.from(c.hash.buffer, c.hash.byteOffset, 32).toString('hex');
        if (!where.has(id)) where.set(id, { img: k, chunk: i });
      });
    }
    return new KeptChunks(images, where, pool);
  }

  /** Every chunk id (hex) of the kept images. */
  ids(): IterableIterator<string> {
    return this.where.keys();
  }

  has(id: string): boolean {
    return this.where.has(id);
  }

  /** Raw bytes of a chunk, decoded and verified against its SHA-256; undefined when no kept image has it or its bytes are gone or damaged. */
  async lookup(hash: Uint8Array): Promise<Uint8Array | undefined> {
    const at = this.where.get(Buffer.from(hash.buffer, hash.byteOffset, 32).toString('hex'));
    if (!at) return undefined;
    const img = this.images[at.img];
    const m = img.manifest;
    const c = m.chunks[at.chunk];
    try {
      const stored = await img.source.readRange(`${PACKS_DIR}/${m.packs[c.pack].name}`, c.offset, c.storedSizeBytes);
      if (this.pool && this.pool.threads > 0) return await decodeOnPool(this.pool, m, [at.chunk], stored);
      return verifyChunk(m, c, stored);
    } catch (err) {
      // Rotated away or damaged since the manifest was read: the delta cannot be assembled from it.
      if (err instanceof CorruptionError) return undefined;
      throw err;
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.images.map((i) => i.source.close()));
  }
}

/**
 * Which of `ids` (hex) the app's kept images hold. Manifests are cached by their image.json's digest,
 * so repeated questions during one push read only the small pointer files.
 */
export async function knownChunkIds(o: KeptChunksOptions, ids: readonly string[]): Promise<string[]> {
  const sets: Set<string>[] = [];
  for (const b of o.builds) {
    const prefix = joinKey(o.depotPrefix, imagePrefix(o.orgName, o.appName, b.buildId, b.dxfName));
    const pointer = await o.blobStore
      .get(prefix + IMAGE_JSON_NAME)
      .then((g) => readAll(g.body, 64 * 1024, IMAGE_JSON_NAME))
      .catch((err: unknown) => {
        if ((err as { code?: unknown }).code === 'not-found' || err instanceof CorruptionError) return null;
        throw err;
      });
    if (pointer === null) continue;
    const key = `${o.orgName}/${o.appName}/${b.buildId}/${b.dxfName}/${createHash('sha256').update(pointer).digest('hex')}`;
    let set = manifestCache.get(key);
    if (!set) {
      const kept = await KeptChunks.open({ ...o, builds: [b] });
      set = new Set(kept.ids());
      await kept.close();
      if (manifestCache.size >= MANIFEST_CACHE_ENTRIES) manifestCache.delete(manifestCache.keys().next().value!);
      manifestCache.set(key, set);
    }
    sets.push(set);
  }
  return ids.filter((id) => sets.some((s) => s.has(id)));
}

export interface AssembleTarOptions extends KeptChunksOptions {
  /** The uploaded delta. */
  deltaKey: string;
  /** Where the assembled tar is stored. */
  tarKey: string;
  /** The tar may not exceed this (as an uploaded tar may not). */
  maxBytes: number;
  limits?: Partial<InputLimits>;
  threads?: number;
  signal?: AbortSignal;
  onProgress?: (fraction: number) => void;
}

/**
 * dltar for a delta import: reads the delta at `deltaKey`, assembles the build's tar from its literals
 * and the kept images' chunks (each verified), and stores it at `tarKey`; deletes the delta once the
 * tar is stored. Returns the tar's size and SHA-256.
 * Errors (StepError): `upload-missing`; `not-a-delta` (bad magic, version or format, checksum, a
 * path escaping the root); `unknown-chunk` (a referenced chunk is not in the app's kept builds, e.g.
 * rotated away since the client asked: push the whole tar instead); `too-large`; `storage-failed`;
 * `canceled`. A refused delta is deleted (it can never pass); the partial tar never stays.
 */
export async function assembleTarFromDelta(o: AssembleTarOptions): Promise<{ sizeBytes: number; sha256: string }> {
  const head = await storageStep('cannot read the uploaded delta', () => o.blobStore.head(o.deltaKey));
  if (head === null) throw new StepError('upload-missing', 'the delta was not uploaded (no object at the upload URL)');
  const pool = new CodecPool({ threads: o.threads ?? 2 });
  const kept = await storageStep('reading the kept builds failed', () => KeptChunks.open(o, pool));
  let body: Readable | undefined;
  try {
    body = await storageStep('cannot read the uploaded delta', () => openRead(o.blobStore, o.deltaKey));
    let total = 0;
    const tar = assembleDelta(body as AsyncIterable<Uint8Array>, (h) => kept.lookup(h), {
      ...(o.limits ? { limits: o.limits } : {}),
      onHeader: (h) => {
        total = h.tarSizeBytes;
        if (h.tarSizeBytes > o.maxBytes) throw new StepError('too-large', `the build's tar would be ${h.tarSizeBytes} bytes, more than the limit of ${o.maxBytes}`, { sizeBytesActual: h.tarSizeBytes, sizeBytesExpected: o.maxBytes });
      },
      onProgress: (n) => o.onProgress?.(total > 0 ? Math.min(1, n / total) : 0),
    });
    // Stores wrap (or drop) a body's error: keep ours to report it as the step's.
    let bodyError: unknown;
    tar.on('error', (err) => {
      bodyError ??= err;
    });
    const onAbort = (): void => {
      tar.destroy(canceledError(o.signal));
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    let put: { sizeBytes: number; sha256: string };
    try {
      put = await o.blobStore.put(o.tarKey, tar, o.signal ? { signal: o.signal } : {});
    } catch (err) {
      await deleteQuietly(o.blobStore, o.tarKey);
      throw deltaStepError(bodyError ?? err, o.signal);
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
    }
    await deleteQuietly(o.blobStore, o.deltaKey);
    return put;
  } catch (err) {
    if (err instanceof StepError && (err.code === 'not-a-delta' || err.code === 'too-large')) await deleteQuietly(o.blobStore, o.deltaKey);
    throw err;
  } finally {
    body?.destroy();
    await kept.close();
    await pool.close();
  }
}

/** The engine's (or the store's) failure while assembling, as the step's error. */
function deltaStepError(err: unknown, signal?: AbortSignal): StepError {
  if (signal?.aborted) return canceledError(signal);
  if (err instanceof StepError) return err;
  if (err instanceof DeltaError) return new StepError(err.code, err.message, { retryable: false, cause: err });
  return new StepError('storage-failed', 'assembling the build from the delta failed', { cause: err });
}
