import { describe, expect, it } from 'vitest';
import { Rng } from '../image/test-support/random-tree.js';
import { Codec } from '../format/types.js';
import { compressBound, decodeChunk, looksIncompressible, sha256, zstdCompress } from './chunk-codec.js';
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

  it('probes for random-looking chunks before spending zstd on them', () => {
    const noise = rng.bytes(64 * 1024);
    expect(looksIncompressible(noise)).toBe(true);
    expect(looksIncompressible(rng.text(64 * 1024))).toBe(false);
    const halfZero = Buffer.concat([Buffer.alloc(32 * 1024), noise.subarray(0, 32 * 1024)]);
    expect(looksIncompressible(halfZero)).toBe(false);
    // 16-bit samples with small values: random low bytes, nearly constant high bytes.
    const pcm = Buffer.alloc(64 * 1024);
    for (let i = 0; i < pcm.length; i += 2) pcm.writeInt16LE((noise[i] - 128) * 8, i);
    expect(looksIncompressible(pcm)).toBe(false);
    expect(looksIncompressible(noise.subarray(0, 4096))).toBe(false); // too short to probe: zstd decides
    // A probed chunk is stored raw; one that merely looks random to the probe still decodes.
    const r = decodeBatchResult(encodeBatch({ level: 3, data: Buffer.concat([noise, halfZero]), lengths: Uint32Array.of(noise.length, halfZero.length) }));
    expect([...r.codecs]).toEqual([Codec.Raw, Codec.Zstd]);
  });

  it('writes batch results in place and decodes into a recycled buffer when they fit', () => {
    const data = Buffer.concat([text, random]);
    const capacity = data.length;
    const buffer = new ArrayBuffer(capacity + compressBound(capacity) + 4096);
    new Uint8Array(buffer).set(data);
    const lengths = Uint32Array.of(text.length, random.length);
    const packed = encodeBatch({ level: 3, data: new Uint8Array(buffer, 0, capacity), lengths, outOffset: capacity });
    expect(packed.buffer).toBe(buffer);
    expect(packed.byteOffset).toBe(capacity);
    const elsewhere = encodeBatch({ level: 3, data: new Uint8Array(buffer, 0, capacity), lengths: lengths.slice(), outOffset: buffer.byteLength - 10 });
    expect(elsewhere.buffer).not.toBe(buffer); // no room: a new buffer, same bytes
    expect(Buffer.from(elsewhere)).toEqual(Buffer.from(packed));
    const r = decodeBatchResult(packed);
    const batch = (out?: ArrayBuffer) => ({
      kind: 'decode' as const,
      data: Buffer.from(r.payload),
      codecs: Uint8Array.from(r.codecs),
      storedLengths: Uint32Array.from(r.storedLengths),
      rawLengths: lengths.slice(),
      hashes: Buffer.from(r.hashes),
      out,
    });
    const spare = new ArrayBuffer(4 + data.length + 100);
    const decoded = decodeBatch(batch(spare));
    expect(decoded.buffer).toBe(spare);
    expect(Buffer.from(decoded.subarray(4))).toEqual(data);
    const small = new ArrayBuffer(16);
    const fresh = decodeBatch(batch(small));
    expect(fresh.buffer).not.toBe(small);
    expect(Buffer.from(fresh.subarray(4))).toEqual(data);
  });
});
