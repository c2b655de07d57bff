// Per-chunk payload codec: zstd (a fresh frame per chunk, content size recorded) or raw when zstd does not pay.
// Decoding is bounded: output is written into a buffer of exactly the recorded raw size, so a corrupt or
// hostile payload can never make us allocate more than the manifest says.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { Codec } from '../format/types.js';
import { MIN_COMPRESSION_SAVING_BYTES, MIN_COMPRESSION_SAVING_RATIO } from '../format/constants.js';

type ZstdBinding = typeof import('zstd-napi/binding.js');
// zstd-napi's binding is a CommonJS re-export of a .node addon; named ESM imports cannot see its members.
const zstd = createRequire(import.meta.url)('zstd-napi/binding.js') as ZstdBinding;

/** SHA-256 of `data` (32 bytes): the name of a chunk and the hash of a file. */
export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/** Largest zstd output for `rawBytes` of input. */
export function compressBound(rawBytes: number): number {
  return zstd.compressBound(rawBytes);
}

/** True when a compressed size is worth storing instead of the raw bytes. */
export function compressionPays(rawBytes: number, compressedBytes: number): boolean {
  const saved = rawBytes - compressedBytes;
  return saved >= MIN_COMPRESSION_SAVING_BYTES && saved >= rawBytes * MIN_COMPRESSION_SAVING_RATIO;
}

/** Reusable per-thread compressor. Not thread-safe; one per worker. */
export class ChunkCompressor {
  private readonly cctx = new zstd.CCtx();
  constructor(private readonly level: number) {}

  /**
   * Encodes `raw` into `out` at `outOffset` (out must have room for compressBound(raw.length)).
   * Returns the codec chosen and the number of bytes written.
   */
  encodeInto(raw: Uint8Array, out: Uint8Array, outOffset: number): { codec: Codec; bytes: number } {
    if (raw.length >= MIN_COMPRESSION_SAVING_BYTES * 2) {
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
