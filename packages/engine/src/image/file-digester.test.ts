import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FileDigester } from './file-digester.js';

/** Splits files into batches of about `batchBytes` at arbitrary points, as the image builder does with chunks. */
async function digestAll(files: Uint8Array[], threads: number, batchBytes: number): Promise<Map<number, string>> {
  const got = new Map<number, string>();
  const d = new FileDigester(threads, (owner, digest) => got.set(owner, Buffer.from(digest).toString('hex')));
  try {
    let bytes: number[] = [];
    let segments: number[] = [];
    let ends: number[] = [];
    const flush = async () => {
      await d.add(Uint8Array.from(bytes), segments, ends);
      bytes = [];
      segments = [];
      ends = [];
    };
    for (let owner = 0; owner < files.length; owner++) {
      const f = files[owner];
      for (let at = 0; at < f.length; ) {
        const n = Math.min(f.length - at, batchBytes - bytes.length, 1 + (at % 997));
        for (let i = 0; i < n; i++) bytes.push(f[at + i]);
        segments.push(owner, n);
        at += n;
        if (bytes.length >= batchBytes) await flush();
      }
      ends.push(owner);
    }
    await flush();
    await d.drain();
  } finally {
    await d.close();
  }
  return got;
}

describe('FileDigester', () => {
  const files = [randomBytes(10_000), new Uint8Array(0), randomBytes(1), randomBytes(70_000), new Uint8Array(0), randomBytes(4096)];
  const expected = new Map(files.map((f, i) => [i, createHash('sha256').update(f).digest('hex')]));

  it.each([0, 1])('gives every file its SHA-256, empty files and files across batches included (threads %i)', async (threads) => {
    expect(await digestAll(files, threads, 8192)).toEqual(expected);
  });

  it('keeps files apart when many batches wait for the thread', async () => {
    const many = Array.from({ length: 200 }, (_, i) => randomBytes(i * 37));
    const want = new Map(many.map((f, i) => [i, createHash('sha256').update(f).digest('hex')]));
    expect(await digestAll(many, 1, 512)).toEqual(want);
  });

  it('refuses work once closed instead of waiting for a thread that is gone', async () => {
    const d = new FileDigester(1, () => undefined);
    await d.close();
    await expect(d.add(new Uint8Array(1), [0, 1], [0])).rejects.toThrow(/closed/);
    await expect(d.drain()).rejects.toThrow(/closed/);
  });
});
