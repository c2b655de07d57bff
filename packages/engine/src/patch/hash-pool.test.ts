import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HashPool } from './hash-pool.js';
import { Rng } from './test-support/trees.js';

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'rockit-hash-pool-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('HashPool', () => {
  it('hashes files and copies them in one pass, returning the digest of the bytes written', async () => {
    const pool = new HashPool(2);
    try {
      // Over one read buffer (1 MiB) and not a multiple of it, plus an empty file.
      const data = new Rng(4).bytes((1 << 20) * 2 + 12_345);
      await writeFile(join(work, 'a'), data);
      await writeFile(join(work, 'e'), '');
      const want = createHash('sha256').update(data).digest('hex');
      const [h, c, e] = await Promise.all([
        pool.hashFile(join(work, 'a')),
        pool.copyAndHash(join(work, 'a'), join(work, 'b')),
        pool.copyAndHash(join(work, 'e'), join(work, 'f')),
      ]);
      expect(h).toEqual({ sha256: want, size: data.length });
      expect(c).toEqual({ sha256: want, size: data.length });
      expect((await readFile(join(work, 'b'))).equals(data)).toBe(true);
      expect(e.size).toBe(0);
      expect((await readFile(join(work, 'f'))).length).toBe(0);
      await expect(pool.hashFile(join(work, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await pool.close();
    }
  });

  it('refuses requests once its threads are gone instead of leaving them pending', async () => {
    const pool = new HashPool(1);
    await writeFile(join(work, 'a'), 'x');
    await pool.close();
    await expect(pool.hashFile(join(work, 'a'))).rejects.toThrow(/exited/);
  });
});
