// tar / folder → ROCKIT image, streaming. Memory holds the manifest model (file table, chunk table and the
// hash → chunk index) plus a bounded number of in-flight batches; file bytes never accumulate.
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { FastCdcChunker, validateChunkingParams } from '../chunker/fastcdc.js';
import { compressBound } from '../codec/chunk-codec.js';
import { CodecPool } from '../codec/codec-pool.js';
import type { CodecBatchResult } from '../codec/codec-batch.js';
import { TarError } from '../errors.js';
import { CODEC_BATCH_BYTES, DEFAULT_CHUNKING, DEFAULT_PACK_SIZE_BYTES, DEFAULT_ZSTD_LEVEL, type InputLimits } from '../format/constants.js';
import type { ChunkingParams, Codec, FileEntry, Manifest } from '../format/types.js';
import { walkFolder } from '../tar/folder-walker.js';
import { InputGuard, type InputEntry } from '../tar/input-entry.js';
import { readTarEntries } from '../tar/tar-reader.js';
import { FileDigester } from './file-digester.js';
import { ImageWriter } from './image-writer.js';

export interface BuildProgress {
  files: number;
  rawBytes: number;
  storedBytes: number;
}

export interface BuildImageOptions {
  /** A tar file (plain, .gz or .zst — detected by content), a folder, or a tar byte stream. */
  input: string | Readable;
  /** Target folder; must not exist or be empty. */
  outDir: string;
  chunking?: Partial<Omit<ChunkingParams, 'algorithm'>>;
  zstdLevel?: number;
  packSizeBytes?: number;
  limits?: Partial<InputLimits>;
  /** Codec worker threads (default: all cores; 0 = calling thread only). */
  threads?: number;
  onProgress?: (p: BuildProgress) => void;
  /** Cancels the build: it stops at the next entry or batch, removes its partial output and throws signal.reason. */
  signal?: AbortSignal;
}

export interface BuildStats {
  /** Regular files. */
  files: number;
  /** Chunk references over all files. */
  chunks: number;
  uniqueChunks: number;
  rawBytes: number;
  /** Bytes of all packs (chunk payloads + pack headers). */
  storedBytes: number;
  manifestBytes: number;
  /** rawBytes / raw bytes of distinct chunks (1 = no duplicates). */
  dedupRatio: number;
  seconds: number;
}

export interface BuildResult {
  manifest: Manifest;
  /** Name of the manifest file inside outDir. */
  manifestName: string;
  stats: BuildStats;
}

/** Room for the per-chunk header of a batch result (37 bytes a chunk) beyond zstd's bound for the batch. */
const BATCH_RESULT_SLACK_BYTES = 1024 * 1024;

interface PendingBatch {
  result: Promise<CodecBatchResult>;
  owners: Int32Array;
  lengths: Uint32Array;
}

/**
 * Builds an image from a tar or a folder into `outDir` (layout: docs/FORMATS.md). Chunks are stored in
 * stream order = first occurrence in input order; identical chunks are stored once.
 * Errors: TarError (unsafe or unreadable input), LimitError (limits), EngineError 'output-exists',
 * RangeError (invalid chunking parameters), signal.reason when cancelled. On any error the partial output is
 * removed.
 */
export async function buildImage(opts: BuildImageOptions): Promise<BuildResult> {
  const started = process.hrtime.bigint();
  const chunking: ChunkingParams = { ...DEFAULT_CHUNKING, ...opts.chunking, algorithm: 'fastcdc' };
  validateChunkingParams(chunking);
  const level = opts.zstdLevel ?? DEFAULT_ZSTD_LEVEL;
  const entries = await openInput(opts.input);
  const writer = await ImageWriter.create(opts.outDir, opts.packSizeBytes ?? DEFAULT_PACK_SIZE_BYTES);
  const pool = new CodecPool({ threads: opts.threads });
  const guard = new InputGuard(opts.limits);
  const chunker = new FastCdcChunker(chunking);
  const files: FileEntry[] = [];
  const index = new Map<string, number>();
  // Whole-file SHA-256 runs on a thread of its own (when the pool has threads): the reading, chunking thread
  // is the build's bottleneck, the codec workers wait for it.
  const digester = new FileDigester(pool.threads > 0 ? 1 : 0, (owner, digest) => {
    files[owner].sha256 = digest.slice();
  });
  const inflight: PendingBatch[] = [];
  const maxInflight = Math.max(2, pool.threads * 2);
  const capacity = CODEC_BATCH_BYTES + chunking.maxSizeBytes;
  // One buffer per batch holds the chunk bytes and, past `capacity`, the worker's packed result; it comes back
  // with the result and is reused once the writer has written the payloads (no fresh memory per batch).
  const bufferBytes = capacity + compressBound(capacity) + BATCH_RESULT_SLACK_BYTES;
  const spare: ArrayBuffer[] = [];
  const takeBuffer = (): Uint8Array => new Uint8Array(spare.pop() ?? new ArrayBuffer(bufferBytes), 0, capacity);
  let data: Uint8Array = takeBuffer();
  let used = 0;
  let openStart = 0;
  let lengths: number[] = [];
  let owners: number[] = [];
  /** The current batch for the digester: [owner, length] runs of its bytes, and the files that ended in it. */
  let segments: number[] = [];
  let ends: number[] = [];
  let chunkRefs = 0;
  let rawBytes = 0;
  let uniqueRawBytes = 0;
  let storedBytes = 0;
  let fileCount = 0;

  const settle = async (): Promise<void> => {
    const b = inflight.shift()!;
    const r = await b.result;
    let off = 0;
    for (let i = 0; i < b.owners.length; i++) {
      const len = r.storedLengths[i];
      const hash = r.hashes.subarray(32 * i, 32 * i + 32);
      const key = Buffer.from(hash.buffer, hash.byteOffset, 32).toString('latin1');
      let ci = index.get(key);
      if (ci === undefined) {
        ci = await writer.append(hash, r.codecs[i] as Codec, b.lengths[i], r.payload.subarray(off, off + len));
        index.set(key, ci);
        uniqueRawBytes += b.lengths[i];
        storedBytes += len;
      }
      off += len;
      files[b.owners[i]].chunks.push(ci);
    }
    await writer.flush();
    const spent = r.payload.buffer as ArrayBuffer;
    if (spent.byteLength === bufferBytes) {
      writer.written().then(
        () => spare.push(spent),
        () => undefined,
      );
    }
    opts.onProgress?.({ files: fileCount, rawBytes, storedBytes });
  };

  const dispatch = async (): Promise<void> => {
    opts.signal?.throwIfAborted();
    if (lengths.length === 0 && ends.length === 0) return;
    await digester.add(data.subarray(0, used), segments, ends);
    segments = [];
    ends = [];
    if (lengths.length === 0) return;
    const batchLengths = Uint32Array.from(lengths);
    const result = pool.run({ level, data: data.subarray(0, used), lengths: batchLengths, outOffset: capacity });
    result.catch(() => undefined); // awaited in order by settle(); avoid an unhandled rejection meanwhile
    inflight.push({ result, owners: Int32Array.from(owners), lengths: Uint32Array.from(lengths) });
    data = takeBuffer();
    used = 0;
    openStart = 0;
    lengths = [];
    owners = [];
    while (inflight.length >= maxInflight) await settle();
  };

  const closeChunk = (owner: number): void => {
    const len = used - openStart;
    lengths.push(len);
    owners.push(owner);
    const k = segments.length;
    if (k > 0 && segments[k - 2] === owner) segments[k - 1] += len;
    else segments.push(owner, len);
    openStart = used;
    chunkRefs++;
  };

  try {
    for await (const e of entries) {
      opts.signal?.throwIfAborted();
      const a = guard.admit(e);
      if (!a) {
        await drain(e);
        continue;
      }
      const entry: FileEntry = { ...a, sha256: new Uint8Array(0), chunks: [] };
      files.push(entry);
      if (a.type !== 'file') {
        await drain(e);
        continue;
      }
      const owner = files.length - 1;
      fileCount++;
      let read = 0;
      const cuts: number[] = [];
      for await (const chunk of e.content ?? []) {
        const buf = chunk as Uint8Array;
        read += buf.length;
        cuts.length = 0;
        chunker.update(buf, cuts);
        let start = 0;
        for (const cut of cuts) {
          data.set(buf.subarray(start, cut), used);
          used += cut - start;
          closeChunk(owner);
          start = cut;
          if (used >= CODEC_BATCH_BYTES) await dispatch();
        }
        if (start < buf.length) {
          data.set(buf.subarray(start), used);
          used += buf.length - start;
        }
      }
      if (chunker.finish() > 0) closeChunk(owner);
      if (read !== a.sizeBytes) {
        throw new TarError('read-failed', e.name, `read ${read} bytes of ${JSON.stringify(e.name)}, expected ${a.sizeBytes} (changed while reading?)`);
      }
      ends.push(owner);
      rawBytes += read;
      if (used >= CODEC_BATCH_BYTES) await dispatch();
    }
    guard.finish();
    await dispatch();
    while (inflight.length > 0) await settle();
    await digester.drain();
    const { manifest, imageJson, manifestBytes } = await writer.finish({ chunking, files });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return {
      manifest,
      manifestName: imageJson.manifest.name,
      stats: {
        files: fileCount,
        chunks: chunkRefs,
        uniqueChunks: manifest.chunks.length,
        rawBytes,
        storedBytes: imageJson.storedBytes,
        manifestBytes,
        dedupRatio: uniqueRawBytes === 0 ? 1 : rawBytes / uniqueRawBytes,
        seconds,
      },
    };
  } catch (err) {
    await Promise.allSettled(inflight.map((b) => b.result));
    await writer.abort();
    throw err;
  } finally {
    await Promise.all([pool.close(), digester.close()]);
  }
}

async function drain(e: InputEntry): Promise<void> {
  if (e.content) for await (const _ of e.content) void _;
}

async function openInput(input: string | Readable): Promise<AsyncIterable<InputEntry>> {
  if (typeof input !== 'string') return readTarEntries(input);
  let isDir: boolean;
  try {
    isDir = (await stat(input)).isDirectory();
  } catch (err) {
    throw new TarError('read-failed', input, `cannot open input ${JSON.stringify(input)}: ${(err as Error).message}`);
  }
  return isDir ? walkFolder(input) : readTarEntries(input);
}
