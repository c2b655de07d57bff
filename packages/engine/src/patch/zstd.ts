// zstd through zstd-napi for patches. Decompression always goes into a buffer of the size the
// caller expects (from B's manifest), never a size read from the frame header, so a mutated
// patch cannot make the reader allocate without bound.

import { createRequire } from 'node:module';
import { Compressor } from 'zstd-napi';
import { STREAM_DEFAULT_HASH_LOG, STREAM_MAX_HASH_LOG } from './constants.js';

type Binding = typeof import('zstd-napi/binding.js');
const binding = createRequire(import.meta.url)('zstd-napi/binding.js') as Binding;

export interface ZstdSettings {
  level: number;
  windowLog: number;
}

// One compression context per settings, reused: a level-19 context with a 16 MiB window holds
// large match tables, and letting the garbage collector find many of them inflates peak memory.
const compressors = new Map<string, Compressor>();

/** Compresses `data`; with a non-empty `dict`, the dictionary is used as raw content (patch-from). */
export function zstdCompress(data: Uint8Array, settings: ZstdSettings, dict?: Uint8Array): Buffer {
  const key = `${settings.level}/${settings.windowLog}`;
  let c = compressors.get(key);
  if (!c) {
    if (compressors.size >= 4) compressors.clear();
    c = new Compressor();
    // No checksum (every chunk is checked against its SHA-256) and no content size (the reader knows
    // it from the manifest and decodes into exactly that many bytes): a few bytes less per frame.
    c.setParameters({ compressionLevel: settings.level, windowLog: settings.windowLog, checksumFlag: false, contentSizeFlag: false });
    compressors.set(key, c);
  }
  if (!dict || dict.length === 0) return c.compress(data);
  c.loadDictionary(dict);
  try {
    return c.compress(data);
  } finally {
    // An empty buffer unloads it: zstd's copy and the tables built from it are freed now, not at the next call.
    c.loadDictionary(NO_DICT);
  }
}

const NO_DICT = new Uint8Array(0);

/**
 * Decompresses one zstd frame into exactly `rawSize` bytes. Throws (a plain Error, the caller
 * wraps it) when the frame is malformed, needs more room, or yields fewer bytes than expected.
 */
export function zstdDecompressExact(frame: Uint8Array, rawSize: number, dict?: Uint8Array): Buffer {
  const dctx = new binding.DCtx();
  const out = Buffer.allocUnsafe(rawSize);
  const n = dict && dict.length > 0 ? dctx.decompressUsingDict(out, frame, dict) : dctx.decompress(out, frame);
  if (n !== rawSize) throw new Error(`frame decodes to ${n} bytes, expected ${rawSize}`);
  return out;
}

/**
 * Compresses `data` as one frame against a large raw-content reference `ref` (zstd --patch-from
 * semantics): long-distance matching on, window `windowLog` (must cover ref + data). A fresh
 * context per call, released afterwards: its match tables are sized for the whole reference
 * (tens of MiB at level 19), too large to keep cached beside the per-run contexts.
 */
export function zstdCompressLong(data: Uint8Array, settings: ZstdSettings, ref: Uint8Array): Buffer {
  const c = new Compressor();
  c.setParameters({ compressionLevel: settings.level, windowLog: settings.windowLog, enableLongDistanceMatching: true, checksumFlag: false, contentSizeFlag: false });
  // zstd indexes only the last 2^max(hashLog + 3, chainLog + 1) bytes of a dictionary in its regular
  // match finder (level 19: 32 MiB); long-distance matching alone misses the short matches a rebuilt
  // executable is made of. Growing the hash table (4 bytes per entry: 64 MiB at 24) indexes a
  // reference of up to 128 MiB whole; the binary tree (chainLog) stays at the level's size.
  const refLog = Math.ceil(Math.log2(Math.max(1, ref.length)));
  if (refLog - 3 > STREAM_DEFAULT_HASH_LOG) c.updateParameters({ hashLog: Math.min(STREAM_MAX_HASH_LOG, refLog - 3) });
  c.loadDictionary(ref);
  return c.compress(data);
}
