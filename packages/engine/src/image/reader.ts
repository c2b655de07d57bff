// Opening an image and reading its chunks, verified. Every chunk read is decompressed into a buffer of its
// recorded size and its SHA-256 checked; a mismatch is a CorruptionError naming the chunk (hex) and its pack.
import { createHash } from 'node:crypto';
import { decodeChunk } from '../codec/chunk-codec.js';
import { CorruptionError, FormatError } from '../errors.js';
import { IMAGE_JSON_MAX_BYTES, IMAGE_JSON_NAME, MAX_COALESCED_READ_BYTES, PACKS_DIR } from '../format/constants.js';
import { parseImageJson, type ImageJson } from '../format/image-json.js';
import { decodeManifest } from '../format/manifest.js';
import type { ChunkEntry, Manifest } from '../format/types.js';
import type { ImageSource } from './image-source.js';
import { DECODE_OK } from '../codec/codec-batch.js';
import type { CodecPool } from '../codec/codec-pool.js';

export interface OpenedImage {
  source: ImageSource;
  imageJson: ImageJson;
  manifest: Manifest;
}

/** Granularity of reused decode buffers. */
const REUSE_ROUND_BYTES = 4 * 1024 * 1024;

export interface OpenImageOptions {
  /**
   * The manifest's file name when known beforehand (release.json names it) and a bound on its size: it is read
   * at the same time as image.json (one round trip less). Checked like any manifest (size and SHA-256 from
   * image.json); read again when image.json names another file or the early read failed.
   */
  manifestHint?: { name: string; maxBytes: number };
}

/**
 * Reads image.json and the manifest, checking the manifest's size and SHA-256 against image.json.
 * Errors: CorruptionError ('image-json', 'manifest'), FormatError (unsupported or malformed files).
 */
export async function openImage(source: ImageSource, opts: OpenImageOptions = {}): Promise<OpenedImage> {
  const hint = opts.manifestHint;
  // Settled either way: a failed early read is only a hint that did not work out (read again below).
  const early = hint ? source.readFile(hint.name, hint.maxBytes).then((b) => b, () => undefined) : undefined;
  const imageJson = parseImageJson(await source.readFile(IMAGE_JSON_NAME, IMAGE_JSON_MAX_BYTES));
  const { name, sha256, sizeBytes } = imageJson.manifest;
  const bytes = (hint?.name === name ? await early : undefined) ?? (await source.readFile(name, sizeBytes));
  if (bytes.length !== sizeBytes) throw new CorruptionError('manifest', name, `${name} is ${bytes.length} bytes, image.json says ${sizeBytes} (truncated)`);
  if (createHash('sha256').update(bytes).digest('hex') !== sha256) throw new CorruptionError('manifest', name, `${name}: SHA-256 does not match image.json (damaged)`);
  const manifest = decodeManifest(bytes, name);
  if (manifest.chunks.length !== imageJson.chunkCount || manifest.packs.length !== imageJson.packCount) {
    throw new FormatError(`${name}: counts disagree with image.json`, 'format-invalid');
  }
  return { source, imageJson, manifest };
}

export function hex(hash: Uint8Array): string {
  return Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString('hex');
}

export function packPath(m: Manifest, c: ChunkEntry): string {
  return `${PACKS_DIR}/${m.packs[c.pack].name}`;
}

/** Decodes and verifies one stored payload. Throws CorruptionError 'chunk' naming the chunk and its pack. */
export function verifyChunk(m: Manifest, c: ChunkEntry, stored: Uint8Array): Buffer {
  let raw: Buffer;
  try {
    raw = decodeChunk(c.codec, stored, c.rawSizeBytes);
  } catch (err) {
    throw new CorruptionError('chunk', hex(c.hash), `chunk ${hex(c.hash)} in pack ${m.packs[c.pack].name} at ${c.offset} does not decode: ${(err as Error).message}`, m.packs[c.pack].name);
  }
  const h = createHash('sha256').update(raw).digest();
  if (!h.equals(c.hash)) {
    throw new CorruptionError('chunk', hex(c.hash), `chunk ${hex(c.hash)} in pack ${m.packs[c.pack].name} at ${c.offset} has the wrong SHA-256`, m.packs[c.pack].name);
  }
  return raw;
}

/** Groups chunk indexes (in the given order) into runs that are adjacent in one pack, each at most maxBytes. */
export function coalesce(m: Manifest, indexes: readonly number[], maxBytes = MAX_COALESCED_READ_BYTES): number[][] {
  const groups: number[][] = [];
  let cur: number[] = [];
  let end = -1;
  let pack = -1;
  let bytes = 0;
  for (const i of indexes) {
    const c = m.chunks[i];
    if (cur.length > 0 && c.pack === pack && c.offset === end && bytes + c.storedSizeBytes <= maxBytes) {
      cur.push(i);
    } else {
      if (cur.length > 0) groups.push(cur);
      cur = [i];
      pack = c.pack;
      bytes = 0;
    }
    end = c.offset + c.storedSizeBytes;
    bytes += c.storedSizeBytes;
  }
  if (cur.length > 0) groups.push(cur);
  return groups;
}

export interface ReadChunksOptions {
  /** Range requests kept in flight (default 4). */
  parallelReads?: number;
  /** Decode and verify on these worker threads instead of the calling thread. */
  pool?: CodecPool;
  /**
   * With a pool: reuse each read's decode buffer for a later read. A yielded `raw` then stays valid only until
   * the generator is resumed after the chunk marked `endOfRead` (copy it to keep it longer).
   */
  reuseBuffers?: boolean;
}

/** One verified chunk from readChunks. */
export interface ReadChunk {
  index: number;
  raw: Buffer;
  /** Last chunk of one coalesced read: with `reuseBuffers`, the bytes of this read are recycled after it. */
  endOfRead: boolean;
}

/**
 * Yields the raw bytes of the given chunks in the given order (one read per run of adjacent chunks, a few reads
 * ahead), each verified. Errors: CorruptionError ('chunk', 'pack-missing', 'pack-truncated'), source errors.
 */
export async function* readChunks(img: OpenedImage, indexes: readonly number[], opts: ReadChunksOptions = {}): AsyncGenerator<ReadChunk> {
  const m = img.manifest;
  const groups = coalesce(m, indexes);
  const ahead = Math.max(1, opts.parallelReads ?? 4);
  const pool = opts.pool && opts.pool.threads > 0 ? opts.pool : undefined;
  const reads: Array<Promise<Uint8Array>> = [];
  // Spent decode buffers (reuseBuffers): at most `ahead` + 1 exist at a time, so memory stays bounded.
  const spare: ArrayBuffer[] = [];
  const start = (g: number[]): Promise<Uint8Array> => {
    const first = m.chunks[g[0]];
    const last = m.chunks[g[g.length - 1]];
    let p = img.source.readRange(packPath(m, first), first.offset, last.offset + last.storedSizeBytes - first.offset);
    if (pool) {
      let out: ArrayBuffer | undefined;
      if (opts.reuseBuffers) {
        let need = 4;
        for (const i of g) need += m.chunks[i].rawSizeBytes;
        const k = spare.findIndex((b) => b.byteLength >= need);
        // Sizes are rounded up so that one buffer serves many reads; a new one is faulted in once, then reused.
        out = k >= 0 ? spare.splice(k, 1)[0] : new ArrayBuffer(Math.ceil(need / REUSE_ROUND_BYTES) * REUSE_ROUND_BYTES);
        if (k < 0 && spare.length > 0) spare.shift(); // keep the number of buffers bounded
      }
      p = p.then((bytes) => decodeOnPool(pool, m, g, bytes, out));
    }
    p.catch(() => undefined);
    return p;
  };
  let next = 0;
  try {
    for (let gi = 0; gi < groups.length; gi++) {
      while (next < groups.length && next < gi + ahead) reads.push(start(groups[next++]));
      const bytes = await reads.shift()!;
      const g = groups[gi];
      if (pool) {
        // Already decoded and verified by a worker: raw chunks back to back.
        let off = 0;
        for (let k = 0; k < g.length; k++) {
          const len = m.chunks[g[k]].rawSizeBytes;
          const raw = Buffer.from(bytes.buffer, bytes.byteOffset + off, len);
          off += len;
          yield { index: g[k], raw, endOfRead: k === g.length - 1 };
        }
        if (opts.reuseBuffers) spare.push(bytes.buffer as ArrayBuffer);
        continue;
      }
      const base = m.chunks[g[0]].offset;
      for (let k = 0; k < g.length; k++) {
        const c = m.chunks[g[k]];
        yield { index: g[k], raw: verifyChunk(m, c, bytes.subarray(c.offset - base, c.offset - base + c.storedSizeBytes)), endOfRead: k === g.length - 1 };
      }
    }
  } finally {
    await Promise.allSettled(reads);
  }
}

/** What a codec worker needs to decode and verify chunks `g` of `m`, in transferable arrays. */
export function chunkDescriptors(m: Manifest, g: number[]): { codecs: Uint8Array; storedLengths: Uint32Array; rawLengths: Uint32Array; hashes: Uint8Array } {
  const n = g.length;
  const codecs = new Uint8Array(n);
  const storedLengths = new Uint32Array(n);
  const rawLengths = new Uint32Array(n);
  const hashes = new Uint8Array(32 * n);
  g.forEach((ci, k) => {
    const c = m.chunks[ci];
    codecs[k] = c.codec;
    storedLengths[k] = c.storedSizeBytes;
    rawLengths[k] = c.rawSizeBytes;
    hashes.set(c.hash, 32 * k);
  });
  return { codecs, storedLengths, rawLengths, hashes };
}

/**
 * Decodes and verifies one coalesced read (chunks `g`, adjacent in one pack) on the pool's worker threads.
 * Returns the raw chunks back to back. Errors: CorruptionError 'chunk' naming the first bad chunk.
 */
export async function decodeOnPool(pool: CodecPool, m: Manifest, g: number[], stored: Uint8Array, reuse?: ArrayBuffer): Promise<Uint8Array> {
  const { codecs, storedLengths, rawLengths, hashes } = chunkDescriptors(m, g);
  // Transfer needs a buffer of our own (a source may hand out views of a shared pool).
  const data = stored.byteOffset === 0 && stored.byteLength === stored.buffer.byteLength ? stored : stored.slice();
  const out = await pool.decode({ kind: 'decode', data, codecs, storedLengths, rawLengths, hashes, out: reuse });
  const bad = new DataView(out.buffer, out.byteOffset, 4).getUint32(0, true);
  if (bad !== DECODE_OK) {
    const c = m.chunks[g[bad]];
    const pack = m.packs[c.pack].name;
    throw new CorruptionError('chunk', hex(c.hash), `chunk ${hex(c.hash)} in pack ${pack} at ${c.offset} does not decode to its SHA-256`, pack);
  }
  return out.subarray(4);
}
