// The data part of a patch as applyPatch consumes it: records read in order, stream records decoded as they
// are met, runs checked against B's manifest and handed to the applier's jobs (which decode them on the codec
// workers) (docs/FORMATS.md, "## Patch", data part).

import type { FileHandle } from 'node:fs/promises';
import type { FileEntry, Manifest } from '../format/types.js';
import type { BaseReader, PlannedRef } from './apply-base.js';
import { DATA_PART_NAME, MAX_REF_BYTES, MAX_STREAM_REF_BYTES, RecordTag, RunCodec } from './constants.js';
import { PatchCorruptError } from './errors.js';
import { DATA_HEADER_BYTES, decodeDataPartHeader, decodeRecordHeader, MAX_RUN_HEADER_BYTES, type RunHeader, type StreamHeader } from './format.js';
import { zstdDecompressExact } from './zstd.js';

export interface RunRecord {
  run: RunHeader;
  payload: Buffer;
  offset: number;
}

export interface StreamRecord {
  stream: StreamHeader;
  payload: Buffer;
  offset: number;
}

/** How a run's bytes are had: ready, or by decoding a zstd frame (against A's reference spans when given). */
export type PreparedRun = { bytes: Buffer } | { frame: Buffer; refs?: PlannedRef[] };

/** Sequential reader of the data part's records. */
export class DataReader {
  private buf = Buffer.alloc(0);
  private bufPos = 0; // file offset of buf[0]
  pos: number; // file offset of the next unread byte
  runsRead = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
    private readonly targetId: string,
  ) {
    this.pos = 0;
  }

  private async fill(n: number): Promise<Buffer> {
    const want = Math.min(n, this.size - this.pos);
    if (this.pos >= this.bufPos && this.pos + want <= this.bufPos + this.buf.length) {
      return this.buf.subarray(this.pos - this.bufPos, this.pos - this.bufPos + want);
    }
    const len = Math.max(want, 1 << 20);
    const b = Buffer.allocUnsafe(Math.min(len, this.size - this.pos));
    const { bytesRead } = await this.fh.read(b, 0, b.length, this.pos);
    this.buf = b.subarray(0, bytesRead);
    this.bufPos = this.pos;
    return this.buf.subarray(0, Math.min(want, bytesRead));
  }

  async header(): Promise<void> {
    const h = decodeDataPartHeader(DATA_PART_NAME, await this.fill(DATA_HEADER_BYTES));
    if (h.targetId !== this.targetId) throw new PatchCorruptError(DATA_PART_NAME, 'data belongs to another target build', 0);
    this.pos = DATA_HEADER_BYTES;
  }

  /** Next run or stream record with its payload, or undefined at a valid end record (checked to be the last bytes). */
  async next(): Promise<RunRecord | StreamRecord | undefined> {
    const offset = this.pos;
    const rec = decodeRecordHeader(DATA_PART_NAME, await this.fill(MAX_RUN_HEADER_BYTES), offset);
    this.pos += rec.headerBytes;
    if (rec.tag === RecordTag.End) {
      if (rec.runCount !== this.runsRead) throw new PatchCorruptError(DATA_PART_NAME, `end record counts ${rec.runCount} runs, read ${this.runsRead}`, offset);
      if (this.pos !== this.size) throw new PatchCorruptError(DATA_PART_NAME, 'bytes after the end record', this.pos);
      return undefined;
    }
    const head = rec.tag === RecordTag.Run ? rec.run : rec.stream;
    // A view, not a copy: fill() never overwrites a buffer it has handed out, it allocates a new one.
    const payload = await this.fill(head.payloadSize);
    if (payload.length !== head.payloadSize) throw new PatchCorruptError(DATA_PART_NAME, 'truncated record payload', offset);
    this.pos += payload.length;
    if (rec.tag === RecordTag.Stream) return { stream: rec.stream, payload, offset };
    this.runsRead++;
    return { run: rec.run, payload, offset };
  }
}

/**
 * B's new bytes, run by run, in the data part's order: the assembler peeks at the next run, takes it when it is
 * the one its file needs, and decodes it (against A's reference bytes, or from the open stream).
 */
export class DataRecords {
  private pending: RunRecord | undefined | null = null;
  /** The decoded stream record whose bytes the next stream-codec runs consume, in order. */
  private stream: { buf: Buffer; pos: number; offset: number } | undefined;

  constructor(
    private readonly reader: DataReader,
    private readonly b: Manifest,
    private readonly base: BaseReader,
  ) {}

  /** File offset of the next unread byte of the data part (for error messages). */
  get pos(): number {
    return this.reader.pos;
  }

  /** The next run record; stream records met on the way are decoded and become the open stream. */
  async peek(): Promise<RunRecord | undefined> {
    while (this.pending === null) {
      const rec = await this.reader.next();
      if (rec && 'stream' in rec) {
        if (this.stream) throw new PatchCorruptError(DATA_PART_NAME, 'stream record before the previous stream was used up', rec.offset);
        this.stream = { buf: await this.decodeStream(rec.stream, rec.payload, rec.offset), pos: 0, offset: rec.offset };
        continue;
      }
      this.pending = rec;
    }
    return this.pending;
  }

  /** Marks the run peek() returned as used: the next peek() reads on. */
  take(): void {
    this.pending = null;
  }

  /**
   * Checks run `run` (chunks k.. of file f) against B's manifest and the open stream, and says how to get its
   * bytes: ready (a raw run, or the open stream's next bytes) or a zstd frame to decode, against reference spans
   * of A (located and bounded here, read by whoever decodes) for a delta run.
   */
  prepareRun(run: RunHeader, payload: Buffer, offset: number, f: FileEntry, k: number): PreparedRun {
    let expect = 0;
    if (k + run.count > f.chunks.length) throw new PatchCorruptError(DATA_PART_NAME, `run goes past the end of ${f.path}`, offset);
    for (let j = 0; j < run.count; j++) expect += this.b.chunks[f.chunks[k + j]].rawSizeBytes;
    if (expect !== run.rawSize) throw new PatchCorruptError(DATA_PART_NAME, `run size ${run.rawSize} does not match ${f.path}`, offset);
    if (run.codec === RunCodec.Raw) {
      if (payload.length !== run.rawSize) throw new PatchCorruptError(DATA_PART_NAME, 'raw run of the wrong size', offset);
      return { bytes: payload };
    }
    if (run.codec === RunCodec.Stream) {
      const st = this.stream;
      if (!st || st.buf.length - st.pos < run.rawSize) throw new PatchCorruptError(DATA_PART_NAME, 'stream run without enough stream bytes', offset);
      const out = st.buf.subarray(st.pos, st.pos + run.rawSize);
      st.pos += run.rawSize;
      if (st.pos === st.buf.length) this.stream = undefined;
      return { bytes: out };
    }
    if (this.stream) throw new PatchCorruptError(DATA_PART_NAME, 'stream bytes left unused before another run', this.stream.offset);
    return { frame: payload, refs: run.codec === RunCodec.ZstdDelta ? this.base.planRefs(run.refs, MAX_REF_BYTES, offset) : undefined };
  }

  /** After the last file: every run and every stream byte must have been used, up to a valid end record. */
  async checkAllUsed(): Promise<void> {
    const left = await this.peek();
    if (this.stream) throw new PatchCorruptError(DATA_PART_NAME, 'stream bytes left unused', this.stream.offset);
    if (left) throw new PatchCorruptError(DATA_PART_NAME, `run for file #${left.run.bFile} chunk ${left.run.ordinal} was never used`, left.offset);
  }

  /** Reads and verifies the stream's reference spans of A, then decodes its frame into exactly rawSize bytes. */
  private async decodeStream(h: StreamHeader, payload: Buffer, offset: number): Promise<Buffer> {
    const dict = await this.base.readRefs(h.refs, MAX_STREAM_REF_BYTES, offset);
    try {
      return zstdDecompressExact(payload, h.rawSize, dict);
    } catch (err) {
      throw new PatchCorruptError(DATA_PART_NAME, `zstd: ${(err as Error).message}`, offset);
    }
  }
}
