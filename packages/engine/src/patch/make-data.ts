// The data part of a patch (makePatch): a header, one record per run of new B chunks (stream records first for
// files coded as one stream), an end record. Written under a temporary name and renamed when complete.

import { createHash } from 'node:crypto';
import { open, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Manifest } from '../format/types.js';
import { DATA_PART_NAME, DATA_PART_VERSION, DATA_PART_VERSION_STREAMS, DEFAULT_WINDOW_LOG, MAX_STREAM_WINDOW_LOG, RunCodec } from './constants.js';
import { encodeDataPartHeader, encodeEndRecord, encodeRunHeader, encodeStreamHeader, type RefSegment } from './format.js';
import type { PatchProgress } from './make.js';
import type { Run, RunPlan } from './make-plan.js';
import { chooseReference, type RefContext } from './make-reference.js';
import type { BuildSide } from './side.js';
import { EncodePool, type EncodedRun } from './encode-pool.js';
import { levelPolicy } from './level-policy.js';
import { zstdCompressLong } from './zstd.js';

/** zstd settings of the runs (the data part's header records them). */
export interface RunCoding {
  level: number;
  windowLog: number;
  runCap: number;
  /** zstd threads for the runs (0: on the calling thread). */
  threads: number;
}

/** Runs read and referenced ahead of the one being written (bounds memory: each holds a run and its reference). */
const RUNS_IN_FLIGHT = 3;

/** A run whose frame is being coded: written, in order, once its frame is back. */
interface PendingRun {
  run: Run;
  raw: Uint8Array;
  refs: RefSegment[];
  coded: Promise<EncodedRun>;
  /** Shared memory holding raw and its reference, given back once the run is written. */
  slab: SharedArrayBuffer;
}

export interface DataPartResult {
  sizeBytes: number;
  /** SHA-256 (hex) of the whole part. */
  sha256: string;
  deltaRuns: number;
  streams: number;
}

/**
 * Writes the data part into `outDir`. `streamRef` maps B files coded as one stream to the A file used whole as
 * their reference. Reads B's new chunks once, A's reference chunks through a small cache.
 */
export async function writeDataPart(
  a: BuildSide,
  b: BuildSide,
  plan: RunPlan,
  streamRef: Map<number, number>,
  ctx: RefContext,
  coding: RunCoding,
  targetId: string,
  outDir: string,
  progress: (p: PatchProgress) => void,
): Promise<DataPartResult> {
  const dataTmp = join(outDir, `${DATA_PART_NAME}.tmp`);
  const pool = new EncodePool(coding.threads);
  const encoder = new DataPartEncoder(a, b, ctx, coding, await open(dataTmp, 'w'), pool);
  try {
    const version = streamRef.size > 0 ? DATA_PART_VERSION_STREAMS : DATA_PART_VERSION;
    await encoder.put(encodeDataPartHeader({ version, level: coding.level, windowLog: coding.windowLog, runCapBytes: coding.runCap, targetId }));
    let done = 0;
    let streamFile = -1;
    for (const run of plan.runs) {
      const af = streamRef.get(run.bFile);
      if (af !== undefined) {
        if (streamFile !== run.bFile) {
          streamFile = run.bFile;
          await encoder.drain(0);
          await encoder.writeStream(plan.runs, run.bFile, af);
        }
        await encoder.drain(0);
        await encoder.put(encodeRunHeader({ bFile: run.bFile, ordinal: run.ordinal, count: run.count, rawSize: run.rawSize, codec: RunCodec.Stream, refs: [], payloadSize: 0 }));
      } else {
        await encoder.submitRun(run);
        await encoder.drain(RUNS_IN_FLIGHT);
      }
      done += run.rawSize;
      progress({ phase: 'encode', doneBytes: done, totalBytes: plan.newRawBytes });
    }
    await encoder.drain(0);
    await encoder.put(encodeEndRecord(plan.runs.length));
  } finally {
    await encoder.close();
    await pool.close();
  }
  await rename(dataTmp, join(outDir, DATA_PART_NAME));
  return { sizeBytes: encoder.bytes, sha256: encoder.digest(), deltaRuns: encoder.deltaRuns, streams: encoder.streams };
}

/** The open data part: appends records, hashing what it writes. */
class DataPartEncoder {
  bytes = 0;
  deltaRuns = 0;
  streams = 0;
  private readonly hash = createHash('sha256');
  private readonly am: Manifest;
  private readonly aCache: ChunkCache;
  private readonly pending: PendingRun[] = [];
  private readonly slabs = new SlabPool();

  constructor(
    private readonly a: BuildSide,
    private readonly b: BuildSide,
    private readonly ctx: RefContext,
    private readonly coding: RunCoding,
    private readonly fh: FileHandle,
    private readonly pool: EncodePool,
  ) {
    this.am = a.manifest;
    this.aCache = new ChunkCache(a, 32 << 20);
  }

  async put(buf: Uint8Array): Promise<void> {
    this.hash.update(buf);
    await this.fh.write(buf, 0, buf.length, this.bytes);
    this.bytes += buf.length;
  }

  /** First run of a stream file: one frame for all its new bytes, the whole A file as reference. */
  async writeStream(runs: Run[], bFile: number, af: number): Promise<void> {
    const f = this.b.manifest.files[bFile];
    const { level } = this.coding;
    const mine = runs.filter((r) => r.bFile === bFile);
    const pieces: Buffer[] = [];
    for (const r of mine) for (let k = r.ordinal; k < r.ordinal + r.count; k++) pieces.push(await this.b.readChunk(f.chunks[k]));
    const raw = Buffer.concat(pieces);
    pieces.length = 0;
    const refPieces: Buffer[] = [];
    for (const ci of this.am.files[af].chunks) refPieces.push(await this.a.readChunk(ci));
    const ref = Buffer.concat(refPieces);
    refPieces.length = 0;
    const wl = Math.min(MAX_STREAM_WINDOW_LOG, Math.max(DEFAULT_WINDOW_LOG, Math.ceil(Math.log2(ref.length + raw.length))));
    const payload = zstdCompressLong(raw, { level, windowLog: wl }, ref);
    const refs: RefSegment[] = [{ aFile: af, ordinal: 0, count: this.am.files[af].chunks.length }];
    await this.put(encodeStreamHeader({ bFile, rawSize: raw.length, windowLog: wl, refs, payloadSize: payload.length }));
    await this.put(payload);
    this.streams++;
  }

  /** Reads a run and its reference of A, and hands them to the zstd threads (written later by drain()). */
  async submitRun(run: Run): Promise<void> {
    const f = this.b.manifest.files[run.bFile];
    const pieces: Buffer[] = [];
    for (let k = run.ordinal; k < run.ordinal + run.count; k++) pieces.push(await this.b.readChunk(f.chunks[k]));
    const refs = chooseReference(run, f, pieces, this.ctx);
    const ref: Buffer[] = [];
    for (const s of refs) for (let k = s.ordinal; k < s.ordinal + s.count; k++) ref.push(await this.aCache.get(this.am.files[s.aFile].chunks[k]));
    // Run and reference go straight into shared memory: the zstd threads read them there, no copy per pass.
    const rawBytes = byteLength(pieces);
    const slab = this.slabs.take(rawBytes + byteLength(ref));
    const raw = new Uint8Array(slab, 0, rawBytes);
    const dict = new Uint8Array(slab, rawBytes, byteLength(ref));
    fill(raw, pieces);
    fill(dict, ref);
    const coded = this.pool.encode({ raw, dict, windowLog: this.coding.windowLog, policy: levelPolicy(this.coding.level) });
    // Observed here so a failure while earlier runs are still being written is not reported as unhandled.
    coded.catch(() => undefined);
    this.pending.push({ run, raw, refs, coded, slab });
  }

  /** Writes coded runs, oldest first, until at most `keep` are left in flight. */
  async drain(keep: number): Promise<void> {
    while (this.pending.length > keep) {
      const p = this.pending.shift()!;
      await this.writeCoded(p);
      this.slabs.give(p.slab);
    }
  }

  /** A run coded on its own: zstd against reference bytes of A when some were found, raw when zstd does not help. */
  private async writeCoded({ run, raw, refs, coded }: PendingRun): Promise<void> {
    let payload: Uint8Array = (await coded).payload;
    let codec = refs.length > 0 ? RunCodec.ZstdDelta : RunCodec.Zstd;
    if (payload.length >= raw.length) {
      payload = raw;
      codec = RunCodec.Raw;
    }
    if (codec === RunCodec.ZstdDelta) this.deltaRuns++;
    await this.put(
      encodeRunHeader({
        bFile: run.bFile,
        ordinal: run.ordinal,
        count: run.count,
        rawSize: run.rawSize,
        codec,
        refs: codec === RunCodec.ZstdDelta ? refs : [],
        payloadSize: payload.length,
      }),
    );
    await this.put(payload);
  }

  digest(): string {
    return this.hash.digest('hex');
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/**
 * Reused SharedArrayBuffers for the runs in flight. A SharedArrayBuffer is freed only once every thread that
 * saw it has collected it, which the zstd threads (allocating little) rarely do: fresh ones per run piled up
 * as ~100 MB of garbage. Sizes are rounded up so that most runs fit any free one.
 */
class SlabPool {
  private readonly free: SharedArrayBuffer[] = [];

  take(bytes: number): SharedArrayBuffer {
    const i = this.free.findIndex((s) => s.byteLength >= bytes);
    if (i >= 0) return this.free.splice(i, 1)[0];
    // None large enough: one free one is dropped, so there are never more than the runs in flight.
    this.free.shift();
    return new SharedArrayBuffer(Math.ceil(Math.max(1, bytes) / SLAB_ROUND_BYTES) * SLAB_ROUND_BYTES);
  }

  give(slab: SharedArrayBuffer): void {
    this.free.push(slab);
  }
}

const SLAB_ROUND_BYTES = 1 << 20;

function byteLength(bufs: readonly Uint8Array[]): number {
  let n = 0;
  for (const b of bufs) n += b.length;
  return n;
}

/** Copies `bufs` one after another into `out` (sized by byteLength). */
function fill(out: Uint8Array, bufs: readonly Uint8Array[]): void {
  let at = 0;
  for (const b of bufs) {
    out.set(b, at);
    at += b.length;
  }
}

/** A byte-bounded LRU of A's chunks (reference reads revisit neighbours). */
class ChunkCache {
  private map = new Map<number, Buffer>();
  private bytes = 0;
  constructor(
    private readonly side: BuildSide,
    private readonly capBytes: number,
  ) {}

  async get(index: number): Promise<Buffer> {
    const hit = this.map.get(index);
    if (hit) {
      this.map.delete(index);
      this.map.set(index, hit);
      return hit;
    }
    const buf = await this.side.readChunk(index);
    this.map.set(index, buf);
    this.bytes += buf.length;
    while (this.bytes > this.capBytes) {
      const [k, v] = this.map.entries().next().value as [number, Buffer];
      this.map.delete(k);
      this.bytes -= v.length;
    }
    return buf;
  }
}
