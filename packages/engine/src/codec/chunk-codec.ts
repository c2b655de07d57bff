// Per-chunk payload codec: zstd (a fresh frame per chunk, content size recorded) or raw when zstd does not pay.
// Decoding is bounded: output is written into a buffer of exactly the recorded raw size, so a corrupt or
// hostile payload can never make us allocate more than the manifest says.
import * as crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { Codec } from '../format/types.js';
import { MIN_COMPRESSION_SAVING_BYTES, MIN_COMPRESSION_SAVING_RATIO } from '../format/constants.js';

type ZstdBinding = typeof import('zstd-napi/binding.js');
// zstd-napi's binding is a CommonJS re-export of a .node addon; named ESM imports cannot see its members.
const zstd = createRequire(import.meta.url)('zstd-napi/binding.js') as ZstdBinding;

/**
 * SHA-256 of `data` (32 bytes): the name of a chunk and the hash of a file. The one-shot crypto.hash
 * (Node ≥ 20.12) spares a Hash object per call.
 */
export const sha256: (data: Uint8Array) => Buffer =
  typeof crypto.hash === 'function' ? (data) => crypto.hash('sha256', data, 'buffer') : (data) => crypto.createHash('sha256').update(data).digest();

/** Largest zstd output for `rawBytes` of input. */
export function compressBound(rawBytes: number): number {
  return zstd.compressBound(rawBytes);
}

/** True when a compressed size is worth storing instead of the raw bytes. */
export function compressionPays(rawBytes: number, compressedBytes: number): boolean {
  const saved = rawBytes - compressedBytes;
  return saved >= MIN_COMPRESSION_SAVING_BYTES && saved >= rawBytes * MIN_COMPRESSION_SAVING_RATIO;
}

/** Chunks at least this long are probed before zstd runs on them (shorter ones are cheap to just try). */
const PROBE_MIN_BYTES = 8 * 1024;
/** The probe reads this many evenly spread slices of PROBE_SLICE_BYTES (4 KiB in all). */
const PROBE_SLICES = 16;
const PROBE_SLICE_BYTES = 256;
const PROBE_SAMPLE_BYTES = PROBE_SLICES * PROBE_SLICE_BYTES;
/**
 * Order-0 entropy (bits per byte) of the sample above which a chunk is stored raw without trying zstd.
 * Uniformly random bytes measure ~7.955 on a 4 KiB sample; saving the required 2 % by entropy coding alone
 * needs ≤ 7.84, so the gap leaves room for the sampling error. What the probe cannot see is redundancy made
 * of long repeats of random-looking bytes inside one chunk; such chunks are stored raw (valid, just larger).
 */
const PROBE_RANDOM_BITS = 7.9;
/** c · log2(c) for every count a sample can hold. */
const CLOG2C = (() => {
  const t = new Float64Array(PROBE_SAMPLE_BYTES + 1);
  for (let c = 2; c <= PROBE_SAMPLE_BYTES; c++) t[c] = c * Math.log2(c);
  return t;
})();

/**
 * True when a sample of `raw` looks like random bytes (already compressed or encrypted data), where zstd
 * would spend its time and store the chunk raw anyway. Costs ~4 KiB of byte counting per chunk.
 */
export function looksIncompressible(raw: Uint8Array, histogram: Uint32Array = new Uint32Array(256)): boolean {
  const n = raw.length;
  if (n < PROBE_MIN_BYTES) return false;
  histogram.fill(0);
  const stride = Math.floor((n - PROBE_SLICE_BYTES) / (PROBE_SLICES - 1));
  for (let s = 0; s < PROBE_SLICES; s++) {
    const start = s * stride;
    const end = start + PROBE_SLICE_BYTES;
    for (let i = start; i < end; i++) histogram[raw[i]]++;
  }
  let sum = 0;
  for (let b = 0; b < 256; b++) sum += CLOG2C[histogram[b]];
  const bits = Math.log2(PROBE_SAMPLE_BYTES) - sum / PROBE_SAMPLE_BYTES;
  return bits >= PROBE_RANDOM_BITS;
}

/** Reusable per-thread compressor. Not thread-safe; one per worker. */
export class ChunkCompressor {
  private readonly cctx = new zstd.CCtx();
  private readonly histogram = new Uint32Array(256);
  /**
   * @param level zstd level.
   * @param probe skip zstd for chunks whose sample looks random (see looksIncompressible); the result is
   *   still a valid payload, only possibly stored raw where zstd would have saved a little.
   */
  constructor(
    private readonly level: number,
    private readonly probe = true,
  ) {}

  /**
   * Encodes `raw` into `out` at `outOffset` (out must have room for compressBound(raw.length)).
   * Returns the codec chosen and the number of bytes written.
   */
  encodeInto(raw: Uint8Array, out: Uint8Array, outOffset: number): { codec: Codec; bytes: number } {
    if (raw.length >= MIN_COMPRESSION_SAVING_BYTES * 2 && !(this.probe && looksIncompressible(raw, this.histogram))) {
      const dst = out.subarray(outOffset, outOffset + zstd.compressBound(raw.length));
      const n = this.cctx.compress(dst, raw, this.level);
      if (compressionPays(raw.length, n)) return { codec: Codec.Zstd, bytes: n };
    }
    out.set(raw, outOffset);
    return { codec: Codec.Raw, bytes: raw.length };
  }
}

let sharedDctx: InstanceType<ZstdBinding['DCtx']> | undefined;

/**
 * Decodes one stored payload into a new buffer of exactly `rawSizeBytes`.
 * Throws Error (never returns short data) if the payload is not a valid frame of that size; callers turn it
 * into a CorruptionError naming the chunk.
 */
export function decodeChunk(codec: Codec, stored: Uint8Array, rawSizeBytes: number): Buffer {
  if (codec === Codec.Raw) {
    if (stored.length !== rawSizeBytes) throw new Error('raw payload size mismatch');
    return Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
  }
  if (codec !== Codec.Zstd) throw new Error(`unknown codec ${String(codec)}`);
  const declared = zstd.getFrameContentSize(stored);
  if (declared !== rawSizeBytes) throw new Error('zstd frame size mismatch');
  const out = Buffer.allocUnsafe(rawSizeBytes);
  sharedDctx ??= new zstd.DCtx();
  const n = sharedDctx.decompress(out, stored);
  if (n !== rawSizeBytes) throw new Error('zstd payload decoded to the wrong size');
  return out;
}

/**
 * Decodes one stored payload into `dst`, which must be exactly `rawSizeBytes` long (a view into a larger
 * buffer is fine: nothing outside it is touched). Throws Error like decodeChunk.
 */
export function decodeChunkInto(codec: Codec, stored: Uint8Array, dst: Uint8Array): void {
  if (codec === Codec.Raw) {
    if (stored.length !== dst.length) throw new Error('raw payload size mismatch');
    dst.set(stored);
    return;
  }
  if (codec !== Codec.Zstd) throw new Error(`unknown codec ${String(codec)}`);
  if (zstd.getFrameContentSize(stored) !== dst.length) throw new Error('zstd frame size mismatch');
  sharedDctx ??= new zstd.DCtx();
  if (sharedDctx.decompress(dst, stored) !== dst.length) throw new Error('zstd payload decoded to the wrong size');
}

/** One-shot zstd for small metadata (manifest bodies). */
export function zstdCompress(data: Uint8Array, level: number): Buffer {
  const out = Buffer.allocUnsafe(zstd.compressBound(data.length));
  const n = zstd.compress(out, data, level);
  return out.subarray(0, n);
}

/** One-shot bounded zstd decode: the frame must declare exactly `rawSizeBytes`. */
export function zstdDecompressExact(data: Uint8Array, rawSizeBytes: number): Buffer {
  return decodeChunk(Codec.Zstd, data, rawSizeBytes);
}
