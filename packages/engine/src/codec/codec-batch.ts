// Hash + compress a batch of chunks. Runs inside codec workers and, as a fallback, on the calling thread.
// The result is packed into one ArrayBuffer so it crosses the thread boundary without a copy.
import { ChunkCompressor, compressBound, decodeChunkInto, sha256 } from './chunk-codec.js';
import type { Codec } from '../format/types.js';

export interface CodecBatch {
  level: number;
  /** Chunk bytes back to back. */
  data: Uint8Array;
  /** Length of each chunk in `data`, in order. */
  lengths: Uint32Array;
  /**
   * Where the packed result may go inside `data.buffer` (a byte offset past the chunk bytes): when the result
   * fits there it is written in place and the one buffer travels back, to be reused for a later batch.
   * Otherwise (or when absent) a new buffer is allocated.
   */
  outOffset?: number;
}

export interface CodecBatchResult {
  /** 32 bytes per chunk: SHA-256 of its raw bytes. */
  hashes: Uint8Array;
  /** Codec per chunk (Codec values). */
  codecs: Uint8Array;
  /** Stored payload length per chunk. */
  storedLengths: Uint32Array;
  /** Stored payloads back to back. */
  payload: Uint8Array;
}

const compressors = new Map<number, ChunkCompressor>();

/** Packs [count u32][storedLengths u32*n][hashes 32*n][codecs n][payload]. 4-byte alignment is kept for the u32s. */
export function encodeBatch(batch: CodecBatch): Uint8Array {
  const n = batch.lengths.length;
  let compressor = compressors.get(batch.level);
  if (!compressor) {
    compressor = new ChunkCompressor(batch.level);
    compressors.set(batch.level, compressor);
  }
  let bound = 0;
  for (let i = 0; i < n; i++) bound += compressBound(batch.lengths[i]);
  const headerBytes = 4 + 4 * n + 32 * n + n;
  const at = batch.outOffset;
  const inPlace = at !== undefined && at >= batch.data.byteOffset + batch.data.byteLength && at + headerBytes + bound <= batch.data.buffer.byteLength;
  const out = inPlace ? new Uint8Array(batch.data.buffer, at, headerBytes + bound) : new Uint8Array(new ArrayBuffer(headerBytes + bound));
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(0, n, true);
  let src = 0;
  let dst = headerBytes;
  for (let i = 0; i < n; i++) {
    const raw = batch.data.subarray(src, src + batch.lengths[i]);
    src += batch.lengths[i];
    out.set(sha256(raw), 4 + 4 * n + 32 * i);
    const { codec, bytes } = compressor.encodeInto(raw, out, dst);
    out[4 + 4 * n + 32 * n + i] = codec;
    view.setUint32(4 + 4 * i, bytes, true);
    dst += bytes;
  }
  return out.subarray(0, dst);
}

/** Views over a packed result (no copies). */
export function decodeBatchResult(packed: Uint8Array): CodecBatchResult {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const n = view.getUint32(0, true);
  const storedLengths = new Uint32Array(n);
  for (let i = 0; i < n; i++) storedLengths[i] = view.getUint32(4 + 4 * i, true);
  const h = 4 + 4 * n;
  return {
    storedLengths,
    hashes: packed.subarray(h, h + 32 * n),
    codecs: packed.subarray(h + 32 * n, h + 33 * n),
    payload: packed.subarray(h + 33 * n),
  };
}

/** Stored payloads to decode and verify (extraction). */
export interface DecodeBatch {
  kind: 'decode';
  /** Stored payloads back to back. */
  data: Uint8Array;
  codecs: Uint8Array;
  storedLengths: Uint32Array;
  rawLengths: Uint32Array;
  /** Expected SHA-256 per chunk, 32 bytes each. */
  hashes: Uint8Array;
  /**
   * A spent result buffer to decode into when it is large enough (4 + sum of rawLengths); saves allocating
   * and faulting in fresh memory per batch. Otherwise a new buffer is allocated.
   */
  out?: ArrayBuffer;
}

/** Sentinel in the first word of a decode result: every chunk verified. */
export const DECODE_OK = 0xffffffff;

/**
 * Decodes and verifies every chunk. Result: [u32 index of the first bad chunk or DECODE_OK][raw bytes back to
 * back], in `batch.out` when it is large enough. Never throws for bad data: damage is reported through the index.
 */
export function decodeBatch(batch: DecodeBatch): Uint8Array {
  const n = batch.codecs.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += batch.rawLengths[i];
  const buffer = batch.out !== undefined && batch.out.byteLength >= 4 + total ? batch.out : new ArrayBuffer(4 + total);
  const out = new Uint8Array(buffer, 0, 4 + total);
  const view = new DataView(buffer);
  view.setUint32(0, DECODE_OK, true);
  let src = 0;
  let dst = 4;
  for (let i = 0; i < n; i++) {
    const stored = batch.data.subarray(src, src + batch.storedLengths[i]);
    src += batch.storedLengths[i];
    const raw = out.subarray(dst, dst + batch.rawLengths[i]);
    try {
      decodeChunkInto(batch.codecs[i] as Codec, stored, raw);
      if (!sha256(raw).equals(batch.hashes.subarray(32 * i, 32 * i + 32))) throw new Error('hash mismatch');
    } catch {
      view.setUint32(0, i, true);
      return out.subarray(0, 4);
    }
    dst += raw.length;
  }
  return out;
}
