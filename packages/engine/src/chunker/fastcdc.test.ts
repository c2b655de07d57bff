import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHUNKING } from '../format/constants.js';
import { Rng } from '../image/test-support/random-tree.js';
import { FastCdcChunker, chunkLengths } from './fastcdc.js';

const input = new Rng(42).bytes(2 * 1024 * 1024);

function cutsBySplit(data: Uint8Array, sizes: number[]): number[] {
  const c = new FastCdcChunker(DEFAULT_CHUNKING);
  const lengths: number[] = [];
  let pos = 0;
  let last = 0;
  let k = 0;
  while (pos < data.length) {
    const n = Math.min(sizes[k++ % sizes.length], data.length - pos);
    const cuts: number[] = [];
    c.update(data.subarray(pos, pos + n), cuts);
    for (const cut of cuts) {
      lengths.push(pos + cut - last);
      last = pos + cut;
    }
    pos += n;
  }
  const tail = c.finish();
  if (tail) lengths.push(tail);
  return lengths;
}

describe('FastCDC', () => {
  it('cuts fixed pseudo-random input at pinned boundaries with pinned chunk ids', () => {
    const lengths = chunkLengths(input, DEFAULT_CHUNKING);
    let off = 0;
    const ids = lengths.map((len) => {
      const id = createHash('sha256').update(input.subarray(off, off + len)).digest('hex').slice(0, 16);
      off += len;
      return id;
    });
    expect(lengths).toMatchInlineSnapshot(`
      [
        50492,
        68914,
        68075,
        77433,
        66553,
        71695,
        67815,
        69461,
        110366,
        78054,
        44473,
        94493,
        110440,
        105626,
        69046,
        87057,
        77792,
        88886,
        86498,
        89352,
        90289,
        77642,
        68335,
        106192,
        101869,
        70304,
      ]
    `);
    expect(ids.slice(0, 6)).toMatchInlineSnapshot(`
      [
        "f6c1df11875d2f16",
        "997ecdb311147424",
        "54ffda247ce4c246",
        "5b15e175e6de59ac",
        "65e58fc2da1aa592",
        "4c2bd05cc24be0b0",
      ]
    `);
  });

  it('finds the same boundaries however the input is split', () => {
    const whole = chunkLengths(input, DEFAULT_CHUNKING);
    expect(cutsBySplit(input.subarray(0, 300_000), [1])).toEqual(chunkLengths(input.subarray(0, 300_000), DEFAULT_CHUNKING));
    expect(cutsBySplit(input, [7919, 65536, 13, 300_001])).toEqual(whole);
    expect(cutsBySplit(input, [1000])).toEqual(whole);
  });

  it('keeps every chunk within [min, max] except a short tail', () => {
    const zeros = new Uint8Array(1024 * 1024); // no content boundaries: forced cuts at max
    const z = chunkLengths(zeros, DEFAULT_CHUNKING);
    expect(z).toEqual([262144, 262144, 262144, 262144]);
    const lengths = chunkLengths(input, DEFAULT_CHUNKING);
    lengths.slice(0, -1).forEach((l) => {
      expect(l).toBeGreaterThanOrEqual(DEFAULT_CHUNKING.minSizeBytes);
      expect(l).toBeLessThanOrEqual(DEFAULT_CHUNKING.maxSizeBytes);
    });
    expect(lengths.reduce((a, b) => a + b, 0)).toBe(input.length);
    expect(chunkLengths(new Uint8Array(100), DEFAULT_CHUNKING)).toEqual([100]);
    expect(chunkLengths(new Uint8Array(0), DEFAULT_CHUNKING)).toEqual([]);
  });

  it('resynchronises after an insertion (content-defined)', () => {
    const edited = Buffer.concat([input.subarray(0, 500_000), Buffer.from('inserted bytes'), input.subarray(500_000)]);
    const a = new Set<string>();
    let off = 0;
    for (const len of chunkLengths(input, DEFAULT_CHUNKING)) {
      a.add(createHash('sha256').update(input.subarray(off, off + len)).digest('hex'));
      off += len;
    }
    off = 0;
    let shared = 0;
    const lb = chunkLengths(edited, DEFAULT_CHUNKING);
    for (const len of lb) {
      if (a.has(createHash('sha256').update(edited.subarray(off, off + len)).digest('hex'))) shared++;
      off += len;
    }
    expect(shared).toBeGreaterThanOrEqual(lb.length - 3);
  });

  it('rejects invalid parameters', () => {
    expect(() => new FastCdcChunker({ algorithm: 'fastcdc', minSizeBytes: 100, avgSizeBytes: 50, maxSizeBytes: 200 })).toThrow(RangeError);
    expect(() => new FastCdcChunker({ algorithm: 'fastcdc', minSizeBytes: 1024, avgSizeBytes: 3000, maxSizeBytes: 8192 })).toThrow(RangeError);
  });
});
