// One run of an image's chunk stream into the staging folder of an extraction. This thread only reads packs
// (runs of adjacent chunks, EXTRACT_READ_BYTES at most, into reused buffers) and hands each read to a codec
// worker, which decodes, verifies every chunk against its id and writes it to every place that uses it
// (decodeAndWrite). A bounded number of reads is in flight, so memory does not grow with the build.
// Resume state is saved for the prefix of the stream whose reads have all been written.
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, writeSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CodecPool } from '../codec/codec-pool.js';
import { DECODE_OK } from '../codec/codec-batch.js';
import { DECODE_WRITE_HEADER_BYTES, type DecodeWriteJob } from '../codec/decode-write.js';
import { CorruptionError } from '../errors.js';
import { EXTRACT_READ_BYTES, EXTRACT_READS_IN_FLIGHT, EXTRACT_STATE_EVERY_BYTES } from '../format/constants.js';
import type { Manifest } from '../format/types.js';
import { chunkDescriptors, coalesce, hex, packPath, readChunks, type OpenedImage, type ReadChunksOptions } from './reader.js';

export interface ExtractProgress {
  /** Raw bytes written so far (this run). */
  doneBytes: number;
  /** Raw bytes to write in this run. */
  totalBytes: number;
}

export interface ExtractRunOptions {
  reads?: Omit<ReadChunksOptions, 'pool'>;
  stateEveryBytes?: number;
  onProgress?: (p: ExtractProgress) => void;
  signal?: AbortSignal;
}

export interface ExtractState {
  manifestSha256: string;
  /** Every chunk with a smaller index has been written to all its places. */
  chunksDone: number;
}

/** SHA-256 of a whole file read in 1 MiB steps, or undefined when it cannot be read (missing, a folder, …). */
export async function hashFile(path: string): Promise<Buffer | undefined> {
  try {
    const h = createHash('sha256');
    for await (const b of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(b as Buffer);
    return h.digest();
  } catch {
    return undefined;
  }
}

/** Spent read buffers kept for reuse; more than this are dropped (the in-flight bound keeps it near this). */
const MAX_SPARE_BUFFERS = EXTRACT_READS_IN_FLIGHT + 2;

/**
 * The chunk stream of one run: which chunks to fetch, where each goes, and the resume state saved on the way.
 * Verification: every chunk fetched is checked against its id by the worker that writes it. Files the run
 * writes from scratch are therefore right by construction (the manifest lists each file's chunks and sizes);
 * on a resume, bytes left by the interrupted run were not checked by this one, so there every file the run
 * touches is hashed whole at the end (and fetched again whole if it does not match).
 */
export class Extraction {
  readonly resumed: boolean;
  /** Chunks fetched in this run. */
  fetched = 0;
  /** Files whose final mode was set by a worker. */
  readonly moded: Uint8Array;
  private readonly m: Manifest;
  /** Every chunk below k0 was written by the interrupted run (0 when not resuming). */
  private readonly k0: number;
  // Where each chunk goes: CSR lists of (file, offset); chunk ci's places are counts[ci] .. counts[ci + 1] - 1.
  private readonly counts: Int32Array;
  private readonly locFile: Int32Array;
  private readonly locOffset: Float64Array;
  /** Highest chunk index of each file. */
  private readonly maxChunk: Int32Array;
  /** 1: the file is written in this run; 0: nothing to do (complete and verified, or not a file with chunks). */
  private readonly todo: Uint8Array;
  /** Places still to hand out per file (the job that hands out the last one sets the file's mode). */
  private readonly left: Int32Array;
  /** Chunks below k0 to fetch again: their file was lost or altered since the interrupted run. */
  private readonly refetch = new Set<number>();
  private readonly spare: ArrayBuffer[] = [];

  constructor(
    private readonly img: OpenedImage,
    private readonly opts: ExtractRunOptions,
    /** Decodes, verifies and writes; owned by the caller (closed after the run). */
    private readonly pool: CodecPool,
    private readonly staging: string,
    private readonly statePath: string,
    state: ExtractState | undefined,
  ) {
    const m = img.manifest;
    this.m = m;
    this.resumed = state !== undefined;
    this.k0 = state?.chunksDone ?? 0;
    const n = m.chunks.length;
    const counts = new Int32Array(n + 1);
    for (const f of m.files) for (const ci of f.chunks) counts[ci + 1]++;
    for (let i = 0; i < n; i++) counts[i + 1] += counts[i];
    const fill = counts.slice(0, n);
    const locFile = new Int32Array(counts[n]);
    const locOffset = new Float64Array(counts[n]);
    const maxChunk = new Int32Array(m.files.length).fill(-1);
    m.files.forEach((f, fi) => {
      let off = 0;
      for (const ci of f.chunks) {
        const slot = fill[ci]++;
        locFile[slot] = fi;
        locOffset[slot] = off;
        off += m.chunks[ci].rawSizeBytes;
        if (ci > maxChunk[fi]) maxChunk[fi] = ci;
      }
    });
    this.counts = counts;
    this.locFile = locFile;
    this.locOffset = locOffset;
    this.maxChunk = maxChunk;
    this.todo = new Uint8Array(m.files.length);
    this.left = new Int32Array(m.files.length);
    this.moded = new Uint8Array(m.files.length);
  }

  /** Fetches the chunks this run needs, in stream order, and has them written to every place that uses them. */
  async writeChunks(): Promise<void> {
    await this.planFiles();
    const { m, counts, locFile } = this;
    const order = [...[...this.refetch].sort((a, b) => a - b), ...Array.from({ length: m.chunks.length - this.k0 }, (_, i) => this.k0 + i)];
    let totalBytes = 0;
    for (const ci of order) {
      for (let s = counts[ci]; s < counts[ci + 1]; s++) {
        if (!this.todo[locFile[s]]) continue;
        totalBytes += m.chunks[ci].rawSizeBytes;
        this.left[locFile[s]]++;
      }
    }
    if (!this.resumed) await this.saveState(0);
    await this.runGroups(coalesce(m, order, EXTRACT_READ_BYTES), order, totalBytes);
    if (this.resumed) await this.checkTouchedFiles();
  }

  /**
   * Runs the reads, at most `parallelReads` at once, each started as soon as any other finishes (a read held up by a
   * slow file creation does not hold up the rest). The state is saved for the prefix of reads that are all written.
   * Throws the error of the first failed read in stream order (or the abort reason), once no read is running.
   */
  private async runGroups(groups: number[][], order: number[], totalBytes: number): Promise<void> {
    const { opts } = this;
    const inFlight = Math.max(1, opts.reads?.parallelReads ?? EXTRACT_READS_IN_FLIGHT);
    const everyBytes = opts.stateEveryBytes ?? EXTRACT_STATE_EVERY_BYTES;
    const refetchCount = this.refetch.size;
    const finished = new Uint8Array(groups.length);
    const running = new Set<Promise<void>>();
    let failure: { gi: number; err: unknown } | undefined;
    let saving = Promise.resolve();
    let prefix = 0; // groups[0 .. prefix - 1] are all written ...
    let position = 0; // ... and hold the first `position` chunks of `order`
    let done = 0;
    let sinceState = 0;
    const finish = (gi: number, bytes: number): void => {
      finished[gi] = 1;
      this.fetched += groups[gi].length;
      done += bytes;
      sinceState += bytes;
      while (prefix < groups.length && finished[prefix]) position += groups[prefix++].length;
      if (position > refetchCount && sinceState >= everyBytes) {
        // Every chunk before order[position - 1] + 1 is on disk (past the refetched ones, `order` is consecutive).
        sinceState = 0;
        const chunksDone = order[position - 1] + 1;
        saving = saving.then(() => this.saveState(chunksDone));
      }
      opts.onProgress?.({ doneBytes: done, totalBytes });
    };
    let next = 0;
    for (;;) {
      if (!failure && opts.signal?.aborted) failure = { gi: -1, err: opts.signal.reason };
      while (!failure && next < groups.length && running.size < inFlight) {
        const gi = next++;
        const p: Promise<void> = this.writeGroup(groups[gi])
          .then((bytes) => finish(gi, bytes))
          .catch((err: unknown) => {
            if (!failure || gi < failure.gi) failure = { gi, err };
          })
          .finally(() => running.delete(p));
        running.add(p);
      }
      if (running.size === 0) break; // no worker may be left writing (or holding descriptors) past this run
      await Promise.race(running);
    }
    await saving;
    if (failure) throw failure.err;
  }

  /** Reads one run of adjacent chunks and has a worker decode, verify and write it. Resolves to the raw bytes written. */
  private async writeGroup(g: number[]): Promise<number> {
    const { m } = this;
    const first = m.chunks[g[0]];
    const last = m.chunks[g[g.length - 1]];
    const dataBytes = last.offset + last.storedSizeBytes - first.offset;
    const need = DECODE_WRITE_HEADER_BYTES + dataBytes;
    const k = this.spare.findIndex((b) => b.byteLength >= need);
    const buffer = k >= 0 ? this.spare.splice(k, 1)[0] : new ArrayBuffer(Math.max(need, DECODE_WRITE_HEADER_BYTES + EXTRACT_READ_BYTES));
    const into = new Uint8Array(buffer, DECODE_WRITE_HEADER_BYTES, dataBytes);
    const source = this.img.source;
    const name = packPath(m, first);
    if (source.readRangeInto) await source.readRangeInto(name, first.offset, into);
    else into.set(await source.readRange(name, first.offset, dataBytes));
    const { job, bytes } = this.makeJob(g, buffer, dataBytes);
    const out = await this.pool.decodeAndWrite(job);
    const bad = new DataView(out.buffer, out.byteOffset, 4).getUint32(0, true);
    if (this.spare.length < MAX_SPARE_BUFFERS) this.spare.push(out.buffer as ArrayBuffer);
    if (bad !== DECODE_OK) {
      const c = m.chunks[g[bad]];
      const pack = m.packs[c.pack].name;
      throw new CorruptionError('chunk', hex(c.hash), `chunk ${hex(c.hash)} in pack ${pack} at ${c.offset} does not decode to its SHA-256`, pack);
    }
    return bytes;
  }

  /** The worker's job for chunks `g`: their places in files this run writes, and the modes of files completed by it. */
  private makeJob(g: number[], buffer: ArrayBuffer, dataBytes: number): { job: DecodeWriteJob; bytes: number } {
    const { m, counts, locFile, locOffset, todo, left } = this;
    const n = g.length;
    const { codecs, storedLengths, rawLengths, hashes } = chunkDescriptors(m, g);
    const placeStart = new Uint32Array(n + 1);
    const files: number[] = [];
    const fileOffsets: number[] = [];
    const slot = new Map<number, number>();
    const paths: string[] = [];
    const modes: number[] = [];
    let bytes = 0;
    g.forEach((ci, k) => {
      const c = m.chunks[ci];
      for (let s = counts[ci]; s < counts[ci + 1]; s++) {
        const fi = locFile[s];
        if (!todo[fi]) continue;
        let j = slot.get(fi);
        if (j === undefined) {
          j = paths.length;
          slot.set(fi, j);
          paths.push(join(this.staging, m.files[fi].path));
          modes.push(0);
        }
        files.push(j);
        fileOffsets.push(locOffset[s]);
        bytes += c.rawSizeBytes;
        if (--left[fi] === 0) {
          modes[j] = m.files[fi].mode & 0o777;
          this.moded[fi] = 1;
        }
      }
      placeStart[k + 1] = files.length;
    });
    const job: DecodeWriteJob = {
      kind: 'decode-write',
      buffer,
      dataBytes,
      codecs,
      storedLengths,
      rawLengths,
      hashes,
      placeStart,
      placeFile: Uint32Array.from(files),
      placeOffset: Float64Array.from(fileOffsets),
      paths,
      modes: Uint16Array.from(modes),
    };
    return { job, bytes };
  }

  /**
   * What each file needs. Fresh run: every file with chunks. Resume: a file the interrupted run finished is kept if
   * its hash is right (else all its chunks are fetched again); a file it was writing gets the chunks from k0 on.
   */
  private async planFiles(): Promise<void> {
    const { m, todo, k0 } = this;
    for (let fi = 0; fi < m.files.length; fi++) {
      const f = m.files[fi];
      if (f.type !== 'file' || f.chunks.length === 0) continue;
      if (this.resumed && this.maxChunk[fi] < k0) {
        const h = await hashFile(join(this.staging, f.path));
        if (h && h.equals(f.sha256)) continue; // complete and right: kept
        for (const ci of f.chunks) this.refetch.add(ci);
      }
      todo[fi] = 1;
    }
  }

  /**
   * Resume only: every file this run wrote to may hold bytes of the interrupted run, which nobody verified since;
   * each is hashed whole, and fetched again whole when it does not match. Errors: CorruptionError 'file'.
   */
  private async checkTouchedFiles(): Promise<void> {
    const { m } = this;
    for (let fi = 0; fi < m.files.length; fi++) {
      if (!this.todo[fi]) continue;
      const f = m.files[fi];
      const p = join(this.staging, f.path);
      let digest = await hashFile(p);
      if (!digest || !digest.equals(f.sha256)) {
        await this.rewriteFile(fi);
        digest = await hashFile(p);
      }
      if (!digest || !digest.equals(f.sha256)) throw new CorruptionError('file', f.path, `file ${JSON.stringify(f.path)} does not match its SHA-256 after writing`);
    }
  }

  private async saveState(chunksDone: number): Promise<void> {
    const tmp = this.statePath + '.tmp';
    await writeFile(tmp, JSON.stringify({ manifestSha256: this.img.imageJson.manifest.sha256, chunksDone } satisfies ExtractState));
    await rename(tmp, this.statePath);
  }

  /** Writes one file again from scratch (truncated first), its chunks read and verified on this thread. */
  private async rewriteFile(fi: number): Promise<void> {
    const f = this.m.files[fi];
    const offsets = new Map<number, number[]>();
    let off = 0;
    for (const ci of f.chunks) {
      const list = offsets.get(ci) ?? [];
      list.push(off);
      offsets.set(ci, list);
      off += this.m.chunks[ci].rawSizeBytes;
    }
    const fd = openSync(join(this.staging, f.path), 'w');
    try {
      const wanted = [...offsets.keys()].sort((a, b) => a - b);
      for await (const { index, raw } of readChunks(this.img, wanted, { ...this.opts.reads })) {
        for (const at of offsets.get(index)!) {
          let w = 0;
          while (w < raw.length) w += writeSync(fd, raw, w, raw.length - w, at + w);
        }
      }
    } finally {
      closeSync(fd);
    }
  }
}
