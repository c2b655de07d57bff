import { describe, expect, it } from 'vitest';
import { Rng } from '../image/test-support/random-tree.js';
import { Codec } from '../format/types.js';
import { decodeChunk, sha256, zstdCompress } from './chunk-codec.js';
import { DECODE_OK, decodeBatch, decodeBatchResult, encodeBatch } from './codec-batch.js';

describe('chunk codec', () => {
  const rng = new Rng(3);
  const random = rng.bytes(40_000);
  const text = rng.text(40_000);
  const tiny = Buffer.from('hi');

  it('compresses when it pays, stores raw otherwise, and hashes raw bytes', () => {
    const data = Buffer.concat([random, text, tiny]);
    const r = decodeBatchResult(encodeBatch({ level: 3, data, lengths: Uint32Array.of(random.length, text.length, tiny.length) }));
    expect([...r.codecs]).toEqual([Codec.Raw, Codec.Zstd, Codec.Raw]);
    expect(r.storedLengths[0]).toBe(random.length);
    expect(r.storedLengths[1]).toBeLessThan(text.length / 2);
    expect(Buffer.from(r.hashes.subarray(32, 64))).toEqual(sha256(text));
    const stored = r.payload.subarray(r.storedLengths[0], r.storedLengths[0] + r.storedLengths[1]);
    expect(decodeChunk(Codec.Zstd, stored, text.length)).toEqual(text);
  });

  it('decodes and verifies batches, naming the first bad chunk', () => {
    const a = zstdCompress(text, 3);
    const batch = () => ({
      kind: 'decode' as const,
      data: Buffer.concat([random, a]),
      codecs: Uint8Array.of(Codec.Raw, Codec.Zstd),
      storedLengths: Uint32Array.of(random.length, a.length),
      rawLengths: Uint32Array.of(random.length, text.length),
      hashes: Buffer.concat([sha256(random), sha256(text)]),
    });
    const ok = decodeBatch(batch());
    expect(new DataView(ok.buffer, ok.byteOffset).getUint32(0, true)).toBe(DECODE_OK);
    expect(Buffer.from(ok.subarray(4))).toEqual(Buffer.concat([random, text]));
    const bad = batch();
    bad.data[random.length + a.length - 2] ^= 1;
    const r = decodeBatch(bad);
    expect(new DataView(r.buffer, r.byteOffset).getUint32(0, true)).toBe(1);
  });

  it('refuses payloads whose frame declares another size (no unbounded allocation)', () => {
    const a = zstdCompress(text, 3);
    expect(() => decodeChunk(Codec.Zstd, a, text.length - 1)).toThrow();
    expect(() => decodeChunk(Codec.Raw, random, random.length + 1)).toThrow();
    expect(() => decodeChunk(7 as Codec, random, random.length)).toThrow(/codec/);
  });
});
