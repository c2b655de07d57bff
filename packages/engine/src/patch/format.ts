// Byte layout of patch parts (docs/FORMATS.md, "## Patch"): headers and data records.

import {
  DATA_PART_MAGIC,
  DATA_PART_VERSION,
  DATA_PART_VERSION_STREAMS,
  MANIFEST_PART_MAGIC,
  MANIFEST_PART_VERSION,
  MAX_MANIFEST_RAW_BYTES,
  MAX_REF_SEGMENTS,
  MAX_RUN_RAW_BYTES,
  MAX_STREAM_RAW_BYTES,
  MAX_STREAM_WINDOW_LOG,
  RecordTag,
  RunCodec,
} from './constants.js';
import { ByteReader, ByteWriter } from '../format/bytes.js';
import { PatchCorruptError, PatchUnsupportedError } from './errors.js';

/** The pointer file (patch.json). */
export interface PatchPointer {
  format: 'rockit-patch';
  formatVersion: number;
  /** SHA-256 (hex) of the canonical encodings of A's and B's manifests. */
  from: { manifestId: string };
  to: { manifestId: string };
  parts: PatchPart[];
  stats: PatchStats;
}

export type PatchPartRole = 'manifest' | 'data' | 'baseManifest';

export interface PatchPart {
  role: PatchPartRole;
  name: string;
  sizeBytes: number;
  /** SHA-256 (hex) of the whole part file. */
  sha256: string;
}

export interface PatchStats {
  /** Bytes a launcher that keeps A's manifest downloads: manifest + data parts. */
  patchBytes: number;
  /** Bytes of the optional base-manifest part (only fetched when the caller has no manifest of A). */
  baseManifestBytes: number;
  filesInTarget: number;
  chunksInTarget: number;
  /** Distinct chunks of B found in A (copied at apply time). */
  sharedChunks: number;
  /** Distinct chunks of B absent from A (shipped). */
  newChunks: number;
  newRawBytes: number;
  runs: number;
  /** Runs stored as zstd against reference bytes of A. */
  deltaRuns: number;
  /** Chunk references copied from earlier in B at apply time. */
  internalCopies: number;
  /** Stream records (B files coded as one frame against their whole same-path A file); absent in older pointers. */
  streams?: number;
}

export interface ManifestPartHeader {
  kind: number;
  level: number;
  windowLog: number;
  rawSize: number;
  baseId: string;
  targetId: string;
}

export const MANIFEST_HEADER_BYTES = 4 + 2 + 1 + 1 + 1 + 3 + 8 + 32 + 32;

export function encodeManifestPartHeader(h: ManifestPartHeader): Buffer {
  const w = new ByteWriter();
  w.u32(MANIFEST_PART_MAGIC);
  w.u16(MANIFEST_PART_VERSION);
  w.u8(h.kind);
  w.u8(h.level);
  w.u8(h.windowLog);
  w.bytes(new Uint8Array(3));
  w.u32(h.rawSize % 0x100000000);
  w.u32(Math.floor(h.rawSize / 0x100000000));
  w.bytes(Buffer.from(h.baseId || '0'.repeat(64), 'hex'));
  w.bytes(Buffer.from(h.targetId, 'hex'));
  return w.finish();
}

export function decodeManifestPartHeader(part: string, buf: Uint8Array): ManifestPartHeader {
  const fail = (d: string, o: number) => new PatchCorruptError(part, d, o);
  const r = new ByteReader(buf, fail);
  if (r.u32() !== MANIFEST_PART_MAGIC) throw fail('bad magic', 0);
  const version = r.u16();
  if (version !== MANIFEST_PART_VERSION) throw new PatchUnsupportedError(part, `version ${version}`);
  const kind = r.u8();
  const level = r.u8();
  const windowLog = r.u8();
  r.bytes(3);
  const rawSize = r.u32() + r.u32() * 0x100000000;
  if (rawSize > MAX_MANIFEST_RAW_BYTES) throw fail(`manifest of ${rawSize} bytes is over the limit`, 12);
  const baseId = Buffer.from(r.bytes(32)).toString('hex');
  const targetId = Buffer.from(r.bytes(32)).toString('hex');
  return { kind, level, windowLog, rawSize, baseId, targetId };
}

export interface DataPartHeader {
  /** 1, or 2 when the part holds stream records (written only then, so plain patches stay readable by version 1 readers). */
  version?: number;
  level: number;
  windowLog: number;
  runCapBytes: number;
  targetId: string;
}

export const DATA_HEADER_BYTES = 4 + 2 + 2 + 1 + 1 + 2 + 4 + 32;

export function encodeDataPartHeader(h: DataPartHeader): Buffer {
  const w = new ByteWriter();
  w.u32(DATA_PART_MAGIC);
  w.u16(h.version ?? DATA_PART_VERSION);
  w.u16(0); // flags
  w.u8(h.level);
  w.u8(h.windowLog);
  w.u16(0);
  w.u32(h.runCapBytes);
  w.bytes(Buffer.from(h.targetId, 'hex'));
  return w.finish();
}

export function decodeDataPartHeader(part: string, buf: Uint8Array): DataPartHeader {
  const fail = (d: string, o: number) => new PatchCorruptError(part, d, o);
  const r = new ByteReader(buf, fail);
  if (r.u32() !== DATA_PART_MAGIC) throw fail('bad magic', 0);
  const version = r.u16();
  if (version !== DATA_PART_VERSION && version !== DATA_PART_VERSION_STREAMS) throw new PatchUnsupportedError(part, `version ${version}`);
  const flags = r.u16();
  if (flags !== 0) throw new PatchUnsupportedError(part, `flags ${flags}`);
  const level = r.u8();
  const windowLog = r.u8();
  r.u16();
  const runCapBytes = r.u32();
  const targetId = Buffer.from(r.bytes(32)).toString('hex');
  return { version, level, windowLog, runCapBytes, targetId };
}

/** A contiguous span of chunk occurrences of one file of A: the unit of reference bytes. */
export interface RefSegment {
  /** Index into A's manifest files. */
  aFile: number;
  /** Position in that file's chunk list. */
  ordinal: number;
  count: number;
}

/** The fixed part of a run record; the payload follows it. */
export interface RunHeader {
  /** Index into B's manifest files. */
  bFile: number;
  /** Position of the run's first chunk in the file's chunk list. */
  ordinal: number;
  count: number;
  rawSize: number;
  codec: RunCodec;
  refs: RefSegment[];
  payloadSize: number;
}

/** A reference list: count, then (aFile, ordinal, count) per segment. Shared by run and stream records. */
function writeRefs(w: ByteWriter, refs: readonly RefSegment[]): void {
  w.varint(refs.length);
  for (const s of refs) {
    w.varint(s.aFile);
    w.varint(s.ordinal);
    w.varint(s.count);
  }
}

function readRefs(r: ByteReader, fail: (detail: string, at: number) => Error): RefSegment[] {
  const n = r.varint();
  if (n > MAX_REF_SEGMENTS) throw fail(`${n} reference segments`, r.pos);
  const refs: RefSegment[] = [];
  for (let i = 0; i < n; i++) refs.push({ aFile: r.varint(), ordinal: r.varint(), count: r.varint() });
  return refs;
}

export function encodeRunHeader(h: RunHeader): Buffer {
  const w = new ByteWriter();
  w.u8(RecordTag.Run);
  w.varint(h.bFile);
  w.varint(h.ordinal);
  w.varint(h.count);
  w.varint(h.rawSize);
  w.u8(h.codec);
  writeRefs(w, h.refs);
  w.varint(h.payloadSize);
  return w.finish();
}

/** A stream record: one zstd frame of `rawSize` bytes, the concatenated bytes of the stream-codec runs that follow it. */
export interface StreamHeader {
  bFile: number;
  rawSize: number;
  windowLog: number;
  refs: RefSegment[];
  payloadSize: number;
}

export function encodeStreamHeader(h: StreamHeader): Buffer {
  const w = new ByteWriter();
  w.u8(RecordTag.Stream);
  w.varint(h.bFile);
  w.varint(h.rawSize);
  w.u8(h.windowLog);
  writeRefs(w, h.refs);
  w.varint(h.payloadSize);
  return w.finish();
}

export function encodeEndRecord(runCount: number): Buffer {
  const w = new ByteWriter();
  w.u8(RecordTag.End);
  w.varint(runCount);
  return w.finish();
}

/** Upper bound of an encoded run header: read this many bytes (or to the end) before decoding one. */
export const MAX_RUN_HEADER_BYTES = 1 + 4 * 9 + 1 + 9 + MAX_REF_SEGMENTS * 27 + 9;

export type DecodedRecord =
  | { tag: RecordTag.End; runCount: number; headerBytes: number }
  | { tag: RecordTag.Run; run: RunHeader; headerBytes: number }
  | { tag: RecordTag.Stream; stream: StreamHeader; headerBytes: number };

/** Decodes one record header from `buf` (which starts at `offset` in the part, for messages). */
export function decodeRecordHeader(part: string, buf: Uint8Array, offset: number): DecodedRecord {
  const fail = (d: string, o: number) => new PatchCorruptError(part, d, offset + o);
  const r = new ByteReader(buf, fail);
  const tag = r.u8();
  if (tag === RecordTag.End) return { tag, runCount: r.varint(), headerBytes: r.pos };
  if (tag === RecordTag.Stream) {
    const bFile = r.varint();
    const rawSize = r.varint();
    const windowLog = r.u8();
    const refs = readRefs(r, fail);
    const payloadSize = r.varint();
    if (rawSize === 0 || rawSize > MAX_STREAM_RAW_BYTES || payloadSize > MAX_STREAM_RAW_BYTES + (1 << 20) || windowLog > MAX_STREAM_WINDOW_LOG) {
      throw fail(`implausible stream (raw ${rawSize}, payload ${payloadSize}, windowLog ${windowLog})`, 0);
    }
    return { tag, stream: { bFile, rawSize, windowLog, refs, payloadSize }, headerBytes: r.pos };
  }
  if (tag !== RecordTag.Run) throw fail(`unknown record tag ${tag}`, 0);
  const bFile = r.varint();
  const ordinal = r.varint();
  const count = r.varint();
  const rawSize = r.varint();
  const codec = r.u8();
  if (codec > RunCodec.Stream) throw new PatchUnsupportedError(part, `run codec ${codec} at byte ${offset}`);
  const refs = readRefs(r, fail);
  const payloadSize = r.varint();
  if (count === 0 || rawSize > MAX_RUN_RAW_BYTES || payloadSize > MAX_RUN_RAW_BYTES + (1 << 20)) {
    throw fail(`implausible run (chunks ${count}, raw ${rawSize}, payload ${payloadSize})`, 0);
  }
  if (codec !== RunCodec.ZstdDelta && refs.length !== 0) throw fail('references on a run without delta', 0);
  if (codec === RunCodec.Stream && payloadSize !== 0) throw fail('payload on a stream run', 0);
  return { tag, run: { bFile, ordinal, count, rawSize, codec, refs, payloadSize }, headerBytes: r.pos };
}
