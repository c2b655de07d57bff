// FastCDC content-defined chunking with normalised chunking (Xia et al., 2016/2020), streaming.
// Invariants: boundaries depend only on the bytes of the current file and the parameters (never on how the
// input is split into buffers); every chunk is within [min, max] except the last chunk of a file, which may be
// shorter than min. The gear table is generated from a fixed seed, so boundaries are stable across runs.
import type { ChunkingParams } from '../format/types.js';
import { CHUNK_MAX_BOUND_BYTES, CHUNK_MIN_BOUND_BYTES, FASTCDC_GEAR_SEED } from '../format/constants.js';

function makeGearTable(seed: number): Int32Array {
  // splitmix32: a small, well-mixed PRNG; only its determinism matters here.
  const table = new Int32Array(256);
  let state = seed >>> 0;
  for (let i = 0; i < 256; i++) {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    table[i] = z ^ (z >>> 16);
  }
  return table;
}

const GEAR = makeGearTable(FASTCDC_GEAR_SEED);

/** Mask with `bits` one-bits at the top of a 32-bit word: the top bits of the gear hash see the last 32 bytes. */
function topMask(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? -1 : ((0xffffffff << (32 - bits)) | 0);
}

/**
 * Rolls the gear hash over buf[i, stop) and returns the offset just past the first byte where `h & mask` is 0,
 * or -1 when there is none; the hash at that point is left in state[0]. Unrolled by four: the per-byte check
 * is the same as a plain loop, so boundaries are too.
 */
function scanForCut(buf: Uint8Array, i: number, stop: number, h: number, mask: number, gear: Int32Array, state: Int32Array): number {
  let j = i;
  const stop4 = stop - 3;
  while (j < stop4) {
    h = ((h << 1) + gear[buf[j]]) | 0;
    if ((h & mask) === 0) return done(state, h, j + 1);
    h = ((h << 1) + gear[buf[j + 1]]) | 0;
    if ((h & mask) === 0) return done(state, h, j + 2);
    h = ((h << 1) + gear[buf[j + 2]]) | 0;
    if ((h & mask) === 0) return done(state, h, j + 3);
    h = ((h << 1) + gear[buf[j + 3]]) | 0;
    if ((h & mask) === 0) return done(state, h, j + 4);
    j += 4;
  }
  while (j < stop) {
    h = ((h << 1) + gear[buf[j]]) | 0;
    j++;
    if ((h & mask) === 0) return done(state, h, j);
  }
  state[0] = h;
  return -1;
}

function done(state: Int32Array, h: number, at: number): number {
  state[0] = h;
  return at;
}

/** Throws RangeError unless min <= avg <= max, within the accepted bounds and avg a power of two. */
export function validateChunkingParams(p: ChunkingParams): void {
  const ok =
    p.algorithm === 'fastcdc' &&
    Number.isInteger(p.minSizeBytes) &&
    Number.isInteger(p.avgSizeBytes) &&
    Number.isInteger(p.maxSizeBytes) &&
    p.minSizeBytes >= CHUNK_MIN_BOUND_BYTES &&
    p.minSizeBytes <= p.avgSizeBytes &&
    p.avgSizeBytes <= p.maxSizeBytes &&
    p.maxSizeBytes <= CHUNK_MAX_BOUND_BYTES &&
    (p.avgSizeBytes & (p.avgSizeBytes - 1)) === 0;
  if (!ok) throw new RangeError(`invalid chunking parameters ${JSON.stringify(p)}`);
}

/**
 * Streaming FastCDC over one file at a time. Feed the file's bytes with `update` (any buffer split), which
 * reports chunk ends; call `finish` at the end of the file to get the length of the trailing chunk, which also
 * resets the chunker for the next file.
 */
export class FastCdcChunker {
  private readonly min: number;
  private readonly avg: number;
  private readonly max: number;
  private readonly maskS: number;
  private readonly maskL: number;
  /** Bytes of the current (open) chunk seen so far. */
  private len = 0;
  private hash = 0;
  /** Out-parameter of scanForCut (the hash after the scan), kept to avoid an allocation per call. */
  private readonly state = new Int32Array(1);

  constructor(params: ChunkingParams) {
    validateChunkingParams(params);
    this.min = params.minSizeBytes;
    this.avg = params.avgSizeBytes;
    this.max = params.maxSizeBytes;
    const bits = Math.round(Math.log2(this.avg));
    // Normalised chunking, level 2: harder to cut before avg, easier after.
    this.maskS = topMask(bits + 2);
    this.maskL = topMask(bits - 2);
  }

  /**
   * Scans `buf` (the next bytes of the current file) and appends to `cuts` the offsets *within buf* where a chunk
   * ends (exclusive). Returns the number of cuts appended. Allocation-free apart from `cuts.push`.
   */
  update(buf: Uint8Array, cuts: number[]): number {
    const n = buf.length;
    const gear = GEAR;
    const min = this.min;
    const avg = this.avg;
    const max = this.max;
    const maskS = this.maskS;
    const maskL = this.maskL;
    let len = this.len;
    let h = this.hash;
    let i = 0;
    let found = 0;
    while (i < n) {
      if (len < min) {
        // Fast path: nothing can cut before min, so skip without hashing.
        const skip = Math.min(min - len, n - i);
        i += skip;
        len += skip;
        if (len < min) break;
      }
      let cut = false;
      if (len < avg) {
        const stop = i + Math.min(n - i, avg - len);
        const j = scanForCut(buf, i, stop, h, maskS, gear, this.state);
        h = this.state[0];
        cut = j >= 0;
        const end = cut ? j : stop;
        len += end - i;
        i = end;
      }
      if (!cut && len >= avg) {
        const stop = i + Math.min(n - i, max - len);
        const j = scanForCut(buf, i, stop, h, maskL, gear, this.state);
        h = this.state[0];
        cut = j >= 0;
        const end = cut ? j : stop;
        len += end - i;
        i = end;
        if (len >= max) cut = true;
      }
      if (cut) {
        cuts.push(i);
        found++;
        len = 0;
        h = 0;
      }
    }
    this.len = len;
    this.hash = h;
    return found;
  }

  /** Ends the current file: returns the length of its trailing chunk (0 if none) and resets for the next file. */
  finish(): number {
    const tail = this.len;
    this.len = 0;
    this.hash = 0;
    return tail;
  }
}

/** Convenience for whole buffers: the chunk lengths of `data` as one file. */
export function chunkLengths(data: Uint8Array, params: ChunkingParams): number[] {
  const c = new FastCdcChunker(params);
  const cuts: number[] = [];
  c.update(data, cuts);
  const out: number[] = [];
  let prev = 0;
  for (const cut of cuts) {
    out.push(cut - prev);
    prev = cut;
  }
  const tail = c.finish();
  if (tail > 0) out.push(tail);
  return out;
}
