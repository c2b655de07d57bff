import { describe, expect, it } from 'vitest';
import { CorruptionError, FormatError } from '../errors.js';
import { Rng } from '../image/test-support/random-tree.js';
import { DEFAULT_CHUNKING } from './constants.js';
import { decodeManifest, encodeManifest, sealManifestBody } from './manifest.js';
import { zstdDecompressExact } from '../codec/chunk-codec.js';
import { Codec, type Manifest } from './types.js';

function sampleManifest(nChunks: number, seed = 1): Manifest {
  const rng = new Rng(seed);
  const chunks = Array.from({ length: nChunks }, () => {
    const raw = 16_384 + rng.int(200_000);
    const zstd = rng.int(2) === 0;
    return { hash: rng.bytes(32), rawSizeBytes: raw, storedSizeBytes: zstd ? raw - 1000 : raw, codec: zstd ? Codec.Zstd : Codec.Raw, pack: 0, offset: 0 };
  });
  // Lay chunks out in two packs in stream order.
  const packs = [
    { name: 'a'.repeat(32) + '.rkp', sizeBytes: 0 },
    { name: 'b'.repeat(32) + '.rkp', sizeBytes: 0 },
  ];
  let off = 8;
  chunks.forEach((c, i) => {
    if (i === Math.floor(nChunks / 2)) {
      packs[0].sizeBytes = off;
      off = 8;
    }
    c.pack = i < Math.floor(nChunks / 2) ? 0 : 1;
    c.offset = off;
    off += c.storedSizeBytes;
  });
  packs[1].sizeBytes = off;
  const files: Manifest['files'] = [
    { path: 'bin', type: 'dir', mode: 0o755, sizeBytes: 0, sha256: new Uint8Array(0), linkTarget: '', chunks: [] },
    { path: 'bin/game', type: 'file', mode: 0o755, sizeBytes: 0, sha256: rng.bytes(32), linkTarget: '', chunks: [] },
    { path: 'bin/game-link', type: 'symlink', mode: 0o777, sizeBytes: 0, sha256: new Uint8Array(0), linkTarget: 'game', chunks: [] },
    { path: 'bin/hard', type: 'hardlink', mode: 0o644, sizeBytes: 0, sha256: new Uint8Array(0), linkTarget: 'bin/game', chunks: [] },
    { path: 'data/empty.txt', type: 'file', mode: 0o644, sizeBytes: 0, sha256: rng.bytes(32), linkTarget: '', chunks: [] },
    { path: 'data/é-ünïcode.pak', type: 'file', mode: 0o644, sizeBytes: 0, sha256: rng.bytes(32), linkTarget: '', chunks: [] },
  ];
  const assign = (fi: number, list: number[]): void => {
    files[fi].chunks = list;
    files[fi].sizeBytes = list.reduce((s, ci) => s + chunks[ci].rawSizeBytes, 0);
  };
  assign(1, Array.from({ length: nChunks - 1 }, (_, i) => i));
  assign(5, [nChunks - 1, 0, 0]);
  return { formatVersion: 1, chunking: { ...DEFAULT_CHUNKING }, files, chunks, packs, profile: { points: [{ tMs: 0, needBytes: 10 }, { tMs: 500, needBytes: 5000 }] } };
}

describe('manifest codec', () => {
  it('round-trips every field', () => {
    const m = sampleManifest(200);
    const decoded = decodeManifest(encodeManifest(m));
    expect(decoded).toEqual(m);
  });

  it('is compact: well under 50 bytes per chunk', () => {
    const m = sampleManifest(5000);
    const bytes = encodeManifest(m);
    expect(bytes.length / 5000).toBeLessThan(45);
  });

  it('detects any flipped byte as CorruptionError or FormatError', () => {
    const bytes = encodeManifest(sampleManifest(50));
    for (let i = 0; i < bytes.length; i += Math.max(1, Math.floor(bytes.length / 300))) {
      const copy = bytes.slice();
      copy[i] ^= 0x40;
      let err: unknown;
      try {
        decodeManifest(copy);
      } catch (e) {
        err = e;
      }
      expect(err instanceof FormatError || err instanceof CorruptionError, `byte ${i}`).toBe(true);
    }
  });

  it('reports truncation and bad magic clearly', () => {
    const bytes = encodeManifest(sampleManifest(10));
    expect(() => decodeManifest(bytes.subarray(0, bytes.length - 3))).toThrow(CorruptionError);
    expect(() => decodeManifest(bytes.subarray(0, 10))).toThrow(FormatError);
    const bad = bytes.slice();
    bad[0] = 0;
    expect(() => decodeManifest(bad)).toThrow(/bad magic/);
    const v2 = bytes.slice();
    v2[4] = 2;
    expect(() => decodeManifest(v2)).toThrow(/version 2/);
  });

  it('never crashes or hangs on random bytes', () => {
    const rng = new Rng(7);
    for (let i = 0; i < 500; i++) {
      const junk = rng.bytes(rng.int(400));
      if (i % 2 === 0 && junk.length >= 6) junk.set([0x52, 0x4b, 0x4d, 0x46, 1, 0], 0);
      expect(() => decodeManifest(junk)).toThrow(FormatError);
    }
  });

  it('never crashes or hangs on well-hashed but mutated bodies', () => {
    const bytes = encodeManifest(sampleManifest(30));
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const raw = zstdDecompressExact(bytes.subarray(52), view.getUint32(16, true));
    const rng = new Rng(11);
    let refused = 0;
    for (let i = 0; i < 400; i++) {
      const body = Buffer.from(raw.subarray(0, i % 4 === 0 ? rng.int(raw.length) : raw.length));
      for (let k = 0; k < 1 + rng.int(4); k++) if (body.length > 0) body[rng.int(body.length)] = rng.next() & 0xff;
      try {
        decodeManifest(sealManifestBody(body, rng.int(2) === 0));
      } catch (e) {
        expect(e).toBeInstanceOf(FormatError);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(300);
  });

  it('refuses well-hashed manifests with unsafe or inconsistent content', () => {
    const unsafe = sampleManifest(4);
    unsafe.files[4].path = '../escape';
    expect(() => decodeManifest(encodeManifest(unsafe))).toThrow(/invalid path/);
    const abs = sampleManifest(4);
    abs.files[4].path = '/etc/passwd';
    expect(() => decodeManifest(encodeManifest(abs))).toThrow(FormatError);
    const beneath = sampleManifest(4);
    beneath.files[4].path = 'bin/game-link/x';
    expect(() => decodeManifest(encodeManifest(beneath))).toThrow(/beneath a symlink/);
    const sizes = sampleManifest(4);
    sizes.files[1].sizeBytes += 1;
    expect(() => decodeManifest(encodeManifest(sizes))).toThrow(/add up/);
    const hard = sampleManifest(4);
    hard.files[3].linkTarget = 'nope';
    expect(() => decodeManifest(encodeManifest(hard))).toThrow(/hard link/);
  });
});
