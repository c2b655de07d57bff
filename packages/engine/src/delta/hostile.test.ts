// Hostile deltas: every malformed, truncated, lying or over-limit input fails with DeltaError
// 'not-a-delta' (never a crash, a hang or an allocation the input asks for), before a complete tar exists.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Rng } from '../image/test-support/random-tree.js';
import { tarSize } from '../tar/tar-writer.js';
import { assembleDelta } from './assemble.js';
import { DeltaError } from './errors.js';
import { readDelta } from './read.js';
import { collect, craftEntry, craftHeader, craftLiteral, craftRef, pieces, sealDelta } from './test-support.js';

const noChunks = async () => undefined;

async function refusal(bytes: Buffer, limits?: Parameters<typeof readDelta>[1]): Promise<DeltaError> {
  const err = await collect(assembleDelta(pieces(bytes, 13), noChunks, limits ? { limits } : {})).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'the delta was accepted').toBeInstanceOf(DeltaError);
  return err as DeltaError;
}

const raw = new Rng(1).bytes(5000);
const fileEntry = { name: 'a.bin', type: 'file' as const, source: '', size: raw.length, mode: 0o644, mtime: 0 };
const tarBytes = tarSize([fileEntry]);

/** A valid one-file delta with one literal chunk. */
function valid(): Buffer {
  return sealDelta(Buffer.concat([craftHeader({ tarSizeBytes: tarBytes }), craftEntry(fileEntry), craftLiteral(raw)]), { entries: 1, refs: 0, literals: 1 });
}

describe('delta: hostile input', () => {
  it('the hand-made valid delta assembles (the baseline of the mutations below)', async () => {
    const tar = await collect(assembleDelta(pieces(valid()), noChunks));
    expect(tar.length).toBe(tarBytes);
  });

  it('every truncation is refused', async () => {
    const v = valid();
    for (let n = 0; n < v.length; n += n < 100 ? 1 : 97) expect((await refusal(v.subarray(0, n))).code).toBe('not-a-delta');
    expect((await refusal(v.subarray(0, v.length - 1))).code).toBe('not-a-delta');
  });

  it('bad magic, version, flags and chunking parameters', async () => {
    for (const mutate of [(b: Buffer) => (b[0] = 0x50), (b: Buffer) => b.writeUInt16LE(2, 4), (b: Buffer) => b.writeUInt16LE(1, 6), (b: Buffer) => b.writeUInt32LE(3, 12)]) {
      const b = valid();
      mutate(b);
      expect((await refusal(b)).message).toMatch(/delta:/);
    }
    expect((await refusal(Buffer.from('PK\u0003\u0004 a zip file, not a delta at all..........'))).message).toMatch(/magic/);
  });

  it('a flipped byte anywhere fails the checksum (or an earlier check)', async () => {
    const v = valid();
    for (let at = 32; at < v.length; at += 331) {
      const b = Buffer.from(v);
      b[at] ^= 0x01;
      await refusal(b);
    }
  });

  it('lying lengths: a chunk past its file, a literal longer than its stored bytes, zero and over-max chunks', async () => {
    const h = craftHeader({ tarSizeBytes: tarBytes });
    const e = craftEntry(fileEntry);
    const seal = (...parts: Buffer[]) => sealDelta(Buffer.concat([h, ...parts]), { entries: 1, refs: 0, literals: 1 });
    expect((await refusal(seal(e, craftLiteral(raw, { rawLength: raw.length + 1 })))).message).toMatch(/runs past|stored bytes/);
    expect((await refusal(seal(e, craftLiteral(raw, { storedLength: 2 ** 31 })))).message).toMatch(/stored bytes/);
    expect((await refusal(seal(e, craftLiteral(raw, { codec: 1, storedLength: 2 ** 30 })))).message).toMatch(/stored bytes/);
    expect((await refusal(seal(e, craftLiteral(raw, { codec: 9 })))).message).toMatch(/codec/);
    expect((await refusal(seal(e, craftRef(Buffer.alloc(32), 0)))).message).toMatch(/chunk of 0/);
    const big = { ...fileEntry, size: 2 ** 40 };
    const hb = craftHeader({ tarSizeBytes: tarSize([big]) });
    expect((await refusal(sealDelta(Buffer.concat([hb, craftEntry(big), craftRef(Buffer.alloc(32), 2 ** 31)]), { entries: 1, refs: 1, literals: 0 }))).message).toMatch(/limit/);
    // A file whose pieces stop short of its size.
    const short = craftLiteral(raw.subarray(0, 100));
    expect((await refusal(seal(e, short))).message).toMatch(/short/);
    // A literal whose bytes do not match its hash.
    expect((await refusal(seal(e, craftLiteral(raw, { hash: createHash('sha256').update('other').digest() })))).message).toMatch(/SHA-256/);
  });

  it('a header tar size that disagrees with the entries', async () => {
    const b = sealDelta(Buffer.concat([craftHeader({ tarSizeBytes: tarBytes + 512 }), craftEntry(fileEntry), craftLiteral(raw)]), { entries: 1, refs: 0, literals: 1 });
    expect((await refusal(b)).message).toMatch(/tar of/);
    const small = sealDelta(Buffer.concat([craftHeader({ tarSizeBytes: 1024 }), craftEntry(fileEntry), craftLiteral(raw)]), { entries: 1, refs: 0, literals: 1 });
    expect((await refusal(small)).message).toMatch(/exceed the tar size/);
  });

  it('wrong trailer counts and bytes after the trailer', async () => {
    const body = Buffer.concat([craftHeader({ tarSizeBytes: tarBytes }), craftEntry(fileEntry), craftLiteral(raw)]);
    expect((await refusal(sealDelta(body, { entries: 2, refs: 0, literals: 1 }))).message).toMatch(/counts/);
    expect((await refusal(Buffer.concat([valid(), Buffer.from([0])]))).message).toMatch(/after the trailer/);
  });

  it('path traversal, absolute paths, unnormalised names, symlinks out of the root', async () => {
    for (const name of ['../evil', 'a/../../evil', '/etc/passwd', 'a//b', './a', 'a\\b', 'C:/x', 'a\u0000b']) {
      const e = { ...fileEntry, name, size: 0 };
      const b = sealDelta(Buffer.concat([craftHeader({ tarSizeBytes: 2048 }), craftEntry(e)]), { entries: 1, refs: 0, literals: 0 });
      expect((await refusal(b)).message, name).toMatch(/unsafe|path/);
    }
    const link = { name: 'l', type: 'symlink' as const, source: '', size: 0, mode: 0o777, mtime: 0, linkname: '../../etc' };
    const b = sealDelta(Buffer.concat([craftHeader({ tarSizeBytes: tarSize([link]) }), craftEntry(link)]), { entries: 1, refs: 0, literals: 0 });
    expect((await refusal(b)).message).toMatch(/outside the root/);
  });

  it('huge counts and sizes hit the limits before any work', async () => {
    const many = Array.from({ length: 11 }, (_, i) => ({ name: `d${i}`, type: 'directory' as const, source: '', size: 0, mode: 0o755, mtime: 0 }));
    const b = sealDelta(Buffer.concat([craftHeader({ tarSizeBytes: tarSize(many) }), ...many.map((e) => craftEntry(e))]), { entries: 11, refs: 0, literals: 0 });
    expect((await refusal(b, { maxFiles: 10 })).message).toMatch(/more than 10 entries/);
    const huge = { ...fileEntry, size: 2 ** 50 };
    const hb = sealDelta(Buffer.concat([craftHeader({ tarSizeBytes: tarSize([huge]) }), craftEntry(huge)]), { entries: 1, refs: 0, literals: 0 });
    expect((await refusal(hb)).message).toMatch(/exceeds/);
    const longName = { ...fileEntry, name: 'x'.repeat(5000), size: 0 };
    expect((await refusal(sealDelta(Buffer.concat([craftHeader({ tarSizeBytes: tarSize([longName]) }), craftEntry(longName)]), { entries: 1, refs: 0, literals: 0 }))).message).toMatch(/path of 5000/);
  });

  it('a record type that does not exist', async () => {
    const b = sealDelta(Buffer.concat([craftHeader({ tarSizeBytes: 1024 }), Buffer.from([0x99])]), { entries: 0, refs: 0, literals: 0 });
    expect((await refusal(b)).message).toMatch(/unknown record type/);
  });
});
