import { describe, expect, it } from 'vitest';
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

  it('refuses random bytes as part headers and records with typed errors', () => {
    const rng = new Rng(13);
    for (let i = 0; i < 2000; i++) {
      const buf = rng.bytes(rng.int(200));
      for (const decode of [
        () => decodeManifestPartHeader('m', buf),
        () => decodeDataPartHeader('d', buf),
        () => decodeRecordHeader('d', buf, 0),
      ]) {
        try {
          decode();
        } catch (err) {
          expect(err).toBeInstanceOf(PatchError);
        }
      }
    }
  });

  it('bounds what a record may announce', () => {
    const huge = encodeRunHeader({ bFile: 0, ordinal: 0, count: 1, rawSize: 2 ** 40, codec: 1, refs: [], payloadSize: 10 });
    expect(() => decodeRecordHeader('d', huge, 0)).toThrow(PatchCorruptError);
  });
});
