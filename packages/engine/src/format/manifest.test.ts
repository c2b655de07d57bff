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

  describe('load profile margin table (flags bit 1)', () => {
    const tiny = (): Manifest => ({
      formatVersion: 1,
      chunking: { algorithm: 'fastcdc', minSizeBytes: 16384, avgSizeBytes: 65536, maxSizeBytes: 262144 },
      packs: [{ name: 'p.rkp', sizeBytes: 308 }],
      chunks: [
        { hash: new Uint8Array(32).fill(1), rawSizeBytes: 100, storedSizeBytes: 100, codec: Codec.Raw, pack: 0, offset: 8 },
        { hash: new Uint8Array(32).fill(2), rawSizeBytes: 300, storedSizeBytes: 200, codec: Codec.Zstd, pack: 0, offset: 108 },
      ],
      files: [{ path: 'a.bin', type: 'file', mode: 0o644, sizeBytes: 400, sha256: new Uint8Array(32).fill(3), linkTarget: '', chunks: [0, 1] }],
      profile: {
        points: [{ tMs: 0, needBytes: 100 }, { tMs: 250, needBytes: 300 }],
        margins: [{ bytesPerSecond: 1000, marginBytes: 7 }, { bytesPerSecond: 5000, marginBytes: 3 }],
      },
    });
    // Golden raw body: ... file table, then points (count 2; Δt 0, zigzag +100; Δt 250, zigzag +200) and the
    // margin table (count 2; Δb 1000, 7; Δb 4000, 3).
    const GOLDEN =
      '018080018080048080100105702e726b70b402020101010101010101010101010101010101010101010101010101010101010101' +
      '00640010020202020202020202020202020202020202020202020202020202020202020201ac02c801000001000005612e62696e' +
      'a403900303030303030303030303030303030303030303030303030303030303030303030200000200c801fa01900302e80707a01f03';
    const rawOf = (bytes: Uint8Array) => zstdDecompressExact(bytes.subarray(52), new DataView(bytes.buffer, bytes.byteOffset).getUint32(16, true));

    it('encodes to the golden bytes with flags 3 and round-trips', () => {
      const bytes = encodeManifest(tiny());
      expect(new DataView(bytes.buffer, bytes.byteOffset).getUint16(6, true)).toBe(3);
      expect(Buffer.from(rawOf(bytes)).toString('hex')).toBe(GOLDEN);
      const back = decodeManifest(bytes);
      expect(back.profile).toEqual(tiny().profile);
      expect(encodeManifest(back)).toEqual(bytes);
    });

    it('still reads manifests without a margin table (flags 1) and without a profile (flags 0)', () => {
      const raw = Buffer.from(GOLDEN, 'hex');
      const pointsOnly = raw.subarray(0, raw.length - 7); // drop the margin table
      const m = decodeManifest(sealManifestBody(pointsOnly, true));
      expect(m.profile).toEqual({ points: tiny().profile!.points });
      expect(preloadBytesOf(m)).toBe(100);
      const noProfile = raw.subarray(0, raw.length - 7 - 8);
      expect(decodeManifest(sealManifestBody(noProfile, 0)).profile).toBeUndefined();
      const plain = tiny();
      delete plain.profile!.margins;
      expect(new DataView(encodeManifest(plain).buffer).getUint16(6, true)).toBe(1);
    });

    it('refuses a margin table without a profile, unknown flag bits and non-ascending bandwidths', () => {
      const raw = Buffer.from(GOLDEN, 'hex');
      expect(() => decodeManifest(sealManifestBody(raw, 2))).toThrow(/without a profile/);
      expect(() => decodeManifest(sealManifestBody(raw, 7))).toThrow(/unknown flags/);
      const bad = Buffer.concat([raw.subarray(0, raw.length - 7), Buffer.from('02e8070700', 'hex'), Buffer.from('03', 'hex')]);
      expect(() => decodeManifest(sealManifestBody(bad, 3))).toThrow(/strictly ascending/);
      const m = tiny();
      m.profile!.margins = [{ bytesPerSecond: 10, marginBytes: 1 }, { bytesPerSecond: 10, marginBytes: 1 }];
      expect(() => encodeManifest(m)).toThrow(RangeError);
    });
  });
});

function preloadBytesOf(m: Manifest): number {
  // P(b) at a bandwidth high enough that the t = 0 point dominates.
  return Math.max(0, ...m.profile!.points.map((p) => p.needBytes - (1e9 * p.tMs) / 1000));
}
