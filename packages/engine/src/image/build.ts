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
  /** Flush each finished pack to disk in the background (ImageWriter `syncPacks`): for callers that store the image durably. */
  syncPacks?: boolean;
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
  const entries = await openInput(opts.input);
  const writer = await ImageWriter.create(opts.outDir, opts.packSizeBytes ?? DEFAULT_PACK_SIZE_BYTES, { syncPacks: opts.syncPacks ?? false });
  const build = new ImageBuild(opts, chunking, writer);
  try {
    for await (const e of entries) {
      opts.signal?.throwIfAborted();
      await build.add(e);
    }
    await build.finishInput();
    const { manifest, imageJson, manifestBytes } = await writer.finish({ chunking, files: build.files });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return {
      manifest,
      manifestName: imageJson.manifest.name,
      stats: {
        files: build.fileCount,
        chunks: build.chunkRefs,
        uniqueChunks: manifest.chunks.length,
        rawBytes: build.rawBytes,
        storedBytes: imageJson.storedBytes,
        manifestBytes,
        dedupRatio: build.uniqueRawBytes === 0 ? 1 : build.rawBytes / build.uniqueRawBytes,
        seconds,
      },
    };
  } catch (err) {
    await build.settleAll();
    await writer.abort();
    throw err;
  } finally {
    await build.close();
  }
}

/**
 * The state of one build: the file table, the chunk index, the batch being filled and the batches out on the
 * codec pool (settled in order, so chunks are stored in stream order).
 */
class ImageBuild {
  readonly files: FileEntry[] = [];
  fileCount = 0;
  /** Chunk references over all files. */
  chunkRefs = 0;
  rawBytes = 0;
  uniqueRawBytes = 0;
  private storedBytes = 0;
  private readonly level: number;
  private readonly pool: CodecPool;
  private readonly guard: InputGuard;
  private readonly chunker: FastCdcChunker;
  /** Chunk hash (latin1 key) -> chunk index in the image. */
  private readonly index = new Map<string, number>();
  private readonly digester: FileDigester;
  private readonly inflight: PendingBatch[] = [];
  private readonly maxInflight: number;
  private readonly capacity: number;
  private readonly bufferBytes: number;
  private readonly spare: ArrayBuffer[] = [];
  private data: Uint8Array;
  private used = 0;
  private openStart = 0;
  private lengths: number[] = [];
  private owners: number[] = [];
  /** The current batch for the digester: [owner, length] runs of its bytes, and the files that ended in it. */
  private segments: number[] = [];
  private ends: number[] = [];

  constructor(
    private readonly opts: BuildImageOptions,
    chunking: ChunkingParams,
    private readonly writer: ImageWriter,
  ) {
    this.level = opts.zstdLevel ?? DEFAULT_ZSTD_LEVEL;
    this.pool = new CodecPool({ threads: opts.threads });
    this.guard = new InputGuard(opts.limits);
    this.chunker = new FastCdcChunker(chunking);
    // Whole-file SHA-256 runs on a thread of its own (when the pool has threads): the reading, chunking thread
    // is the build's bottleneck, the codec workers wait for it.
    this.digester = new FileDigester(this.pool.threads > 0 ? 1 : 0, (owner, digest) => {
      this.files[owner].sha256 = digest.slice();
    });
    this.maxInflight = Math.max(2, this.pool.threads * 2);
    this.capacity = CODEC_BATCH_BYTES + chunking.maxSizeBytes;
    // One buffer per batch holds the chunk bytes and, past `capacity`, the worker's packed result; it comes back
    // with the result and is reused once the writer has written the payloads (no fresh memory per batch).
    this.bufferBytes = this.capacity + compressBound(this.capacity) + BATCH_RESULT_SLACK_BYTES;
    this.data = this.takeBuffer();
  }

  /** One input entry: admitted (or skipped) by the input rules; a file's bytes are chunked into the batches. */
  async add(e: InputEntry): Promise<void> {
    const a = this.guard.admit(e);
    if (!a) {
      await drain(e);
      return;
    }
    const entry: FileEntry = { ...a, sha256: new Uint8Array(0), chunks: [] };
    this.files.push(entry);
    if (a.type !== 'file') {
      await drain(e);
      return;
    }
    const owner = this.files.length - 1;
    this.fileCount++;
    let read = 0;
    const cuts: number[] = [];
    for await (const chunk of e.content ?? []) {
      const buf = chunk as Uint8Array;
      read += buf.length;
      cuts.length = 0;
      this.chunker.update(buf, cuts);
      let start = 0;
      for (const cut of cuts) {
        this.data.set(buf.subarray(start, cut), this.used);
        this.used += cut - start;
        this.closeChunk(owner);
        start = cut;
        if (this.used >= CODEC_BATCH_BYTES) await this.dispatch();
      }
      if (start < buf.length) {
        this.data.set(buf.subarray(start), this.used);
        this.used += buf.length - start;
      }
    }
    if (this.chunker.finish() > 0) this.closeChunk(owner);
    if (read !== a.sizeBytes) {
      throw new TarError('read-failed', e.name, `read ${read} bytes of ${JSON.stringify(e.name)}, expected ${a.sizeBytes} (changed while reading?)`);
    }
    this.ends.push(owner);
    this.rawBytes += read;
    if (this.used >= CODEC_BATCH_BYTES) await this.dispatch();
  }

  /** After the last entry: the input rules' final checks, the last batch, every batch stored, every file hashed. */
  async finishInput(): Promise<void> {
    this.guard.finish();
    await this.dispatch();
    while (this.inflight.length > 0) await this.settle();
    await this.digester.drain();
  }

  /** Waits for the batches still on the pool (after a failure, before the output is removed). */
  async settleAll(): Promise<void> {
    await Promise.allSettled(this.inflight.map((b) => b.result));
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.close(), this.digester.close()]);
  }

  private takeBuffer(): Uint8Array {
    return new Uint8Array(this.spare.pop() ?? new ArrayBuffer(this.bufferBytes), 0, this.capacity);
  }

  private closeChunk(owner: number): void {
    const len = this.used - this.openStart;
    this.lengths.push(len);
    this.owners.push(owner);
    const segments = this.segments;
    const k = segments.length;
    if (k > 0 && segments[k - 2] === owner) segments[k - 1] += len;
    else segments.push(owner, len);
    this.openStart = this.used;
    this.chunkRefs++;
  }

  /** Hands the current batch to the digester and the codec pool; waits while too many batches are out. */
  private async dispatch(): Promise<void> {
    this.opts.signal?.throwIfAborted();
    if (this.lengths.length === 0 && this.ends.length === 0) return;
    await this.digester.add(this.data.subarray(0, this.used), this.segments, this.ends);
    this.segments = [];
    this.ends = [];
    if (this.lengths.length === 0) return;
    const batchLengths = Uint32Array.from(this.lengths);
    const result = this.pool.run({ level: this.level, data: this.data.subarray(0, this.used), lengths: batchLengths, outOffset: this.capacity });
    result.catch(() => undefined); // awaited in order by settle(); avoid an unhandled rejection meanwhile
    this.inflight.push({ result, owners: Int32Array.from(this.owners), lengths: Uint32Array.from(this.lengths) });
    this.data = this.takeBuffer();
    this.used = 0;
    this.openStart = 0;
    this.lengths = [];
    this.owners = [];
    while (this.inflight.length >= this.maxInflight) await this.settle();
  }

  /** Stores the oldest batch's new chunks (dedup by hash) and gives every chunk reference its index. */
  private async settle(): Promise<void> {
    const b = this.inflight.shift()!;
    const r = await b.result;
    let off = 0;
    for (let i = 0; i < b.owners.length; i++) {
      const len = r.storedLengths[i];
      const hash = r.hashes.subarray(32 * i, 32 * i + 32);
      const key = Buffer.from(hash.buffer, hash.byteOffset, 32).toString('latin1');
      let ci = this.index.get(key);
      if (ci === undefined) {
        ci = await this.writer.append(hash, r.codecs[i] as Codec, b.lengths[i], r.payload.subarray(off, off + len));
        this.index.set(key, ci);
        this.uniqueRawBytes += b.lengths[i];
        this.storedBytes += len;
      }
      off += len;
      this.files[b.owners[i]].chunks.push(ci);
    }
    await this.writer.flush();
    const spent = r.payload.buffer as ArrayBuffer;
    if (spent.byteLength === this.bufferBytes) {
      this.writer.written().then(
        () => this.spare.push(spent),
        () => undefined,
      );
    }
    this.opts.onProgress?.({ files: this.fileCount, rawBytes: this.rawBytes, storedBytes: this.storedBytes });
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
