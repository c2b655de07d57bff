import { describe, expect, it } from 'vitest';
import { MANIFEST_PART_MAGIC, MANIFEST_PART_VERSION, MAX_MANIFEST_RAW_BYTES, MAX_RUN_RAW_BYTES, MAX_STREAM_RAW_BYTES } from './constants.js';
import { PatchCorruptError, PatchError } from './errors.js';
import { decodeDataPartHeader, decodeManifestPartHeader, decodeRecordHeader, encodeRunHeader } from './format.js';
import { decodeManifestCanonical, encodeManifestCanonical } from './manifest-codec.js';
import { memorySide, Rng } from './test-support/trees.js';

const fail = (d: string, o: number) => new PatchCorruptError('test', d, o);

describe('decoders on hostile bytes', () => {
  const side = memorySide([
    { path: 'dir', type: 'dir' },
    { path: 'dir/a', type: 'file', data: new Rng(4).bytes(70_000), mode: 0o755 },
    { path: 'dir/l', type: 'symlink', linkTarget: 'a' },
    { path: 'h', type: 'hardlink', linkTarget: 'dir/a' },
  ]);
  const good = encodeManifestCanonical(side.manifest);

  it('round-trips the canonical manifest encoding', () => {
    expect(encodeManifestCanonical(decodeManifestCanonical(good, fail))).toEqual(good);
  });

  it('keeps a profile without margins in the original form (tag 1) and round-trips one with margins (tag 2)', () => {
    const points = [{ tMs: 0, needBytes: 10 }, { tMs: 70, needBytes: 500 }];
    const plain = encodeManifestCanonical({ ...side.manifest, profile: { points } });
    const withMargins = encodeManifestCanonical({ ...side.manifest, profile: { points, margins: [{ bytesPerSecond: 1000, marginBytes: 9 }] } });
    // Same bytes up to the profile tag; tag 1 then the points, or tag 2, the points and the margin table.
    expect(withMargins.subarray(0, good.length - 1)).toEqual(plain.subarray(0, good.length - 1));
    expect(plain[good.length - 1]).toBe(1);
    expect(withMargins[good.length - 1]).toBe(2);
    expect(decodeManifestCanonical(plain, fail).profile).toEqual({ points });
    expect(decodeManifestCanonical(withMargins, fail).profile).toEqual({ points, margins: [{ bytesPerSecond: 1000, marginBytes: 9 }] });
  });

  it('turns every mutation and truncation of a manifest into a typed error or a valid manifest', () => {
    const rng = new Rng(12);
    let errors = 0;
    for (let i = 0; i < 3000; i++) {
      const buf = Buffer.from(good);
      if (i % 3 === 0) {
        buf[rng.int(buf.length)] = rng.int(256);
      } else if (i % 3 === 1) {
        buf.writeUInt32LE((rng.next() * 0x100000000) >>> 0, rng.int(buf.length - 4));
      }
      const input = i % 3 === 2 ? buf.subarray(0, rng.int(buf.length)) : buf;
      try {
        const m = decodeManifestCanonical(input, fail);
        for (const f of m.files) for (const ci of f.chunks) expect(m.chunks[ci]).toBeDefined();
      } catch (err) {
        expect(err).toBeInstanceOf(PatchError);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(1000);
  });

  it('refuses random bytes as part headers with typed errors (never a header)', () => {
    const rng = new Rng(13);
    for (let i = 0; i < 2000; i++) {
      const buf = rng.bytes(rng.int(200));
      // Each call must throw: a decoder that returned a header for garbage fails here.
      expect(() => decodeManifestPartHeader('m', buf)).toThrow(PatchError);
      expect(() => decodeDataPartHeader('d', buf)).toThrow(PatchError);
    }
    // With the right magic and version, a random rest either decodes within bounds or is refused, typed.
    let decoded = 0;
    for (let i = 0; i < 2000; i++) {
      const fixed = Buffer.alloc(20);
      fixed.writeUInt32LE(MANIFEST_PART_MAGIC, 0);
      fixed.writeUInt16LE(MANIFEST_PART_VERSION, 4);
      fixed.set(rng.bytes(6), 6);
      fixed.writeUInt32LE(rng.int(1 << 30), 12);
      // The ids, possibly cut short.
      const buf = Buffer.concat([fixed, rng.bytes(rng.int(80))]);
      let h: ReturnType<typeof decodeManifestPartHeader>;
      try {
        h = decodeManifestPartHeader('m', buf);
      } catch (err) {
        expect(err).toBeInstanceOf(PatchError);
        continue;
      }
      decoded++;
      expect(buf.length).toBeGreaterThanOrEqual(20 + 64);
      expect(h.rawSize).toBeLessThanOrEqual(MAX_MANIFEST_RAW_BYTES);
      expect(h.baseId).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(decoded).toBeGreaterThan(0);
  });

  it('random record bytes decode within the bounds or fail typed; most are refused', () => {
    const rng = new Rng(14);
    let refused = 0;
    for (let i = 0; i < 2000; i++) {
      const buf = rng.bytes(1 + rng.int(200));
      let r: ReturnType<typeof decodeRecordHeader>;
      try {
        r = decodeRecordHeader('d', buf, 0);
      } catch (err) {
        expect(err).toBeInstanceOf(PatchError);
        refused++;
        continue;
      }
      expect(r.headerBytes).toBeGreaterThan(0);
      expect(r.headerBytes).toBeLessThanOrEqual(buf.length);
      if ('run' in r) {
        expect(r.run.count).toBeGreaterThan(0);
        expect(r.run.rawSize).toBeLessThanOrEqual(MAX_RUN_RAW_BYTES);
      }
      if ('stream' in r) expect(r.stream.rawSize).toBeLessThanOrEqual(MAX_STREAM_RAW_BYTES);
    }
    // Only the three tags (3 of 256 first bytes) can decode at all.
    expect(refused).toBeGreaterThan(1900);
  });

  it('bounds what a record may announce', () => {
    const huge = encodeRunHeader({ bFile: 0, ordinal: 0, count: 1, rawSize: 2 ** 40, codec: 1, refs: [], payloadSize: 10 });
    expect(() => decodeRecordHeader('d', huge, 0)).toThrow(PatchCorruptError);
  });
});
