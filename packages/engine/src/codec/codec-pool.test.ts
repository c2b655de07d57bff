import { describe, expect, it } from 'vitest';
import { Rng } from '../image/test-support/random-tree.js';
import { decodeBatchResult, encodeBatch } from './codec-batch.js';
import { CodecPool, resolveCodecWorkerFile } from './codec-pool.js';

// The pool's workers need the compiled entry (dist/); `npm test` builds first, so it is there.
const workerFile = resolveCodecWorkerFile();

describe('codec pool', () => {
  it('loads a CommonJS entry in its workers, so piscina never require()s an ES module', () => {
    expect(workerFile).toBeDefined();
    expect(workerFile).toMatch(/codec-worker-entry\.cjs$/);
  });

  it('gives the same result on workers as on the calling thread', async () => {
    const rng = new Rng(9);
    const data = Buffer.concat([rng.bytes(30_000), rng.text(50_000)]);
    const lengths = Uint32Array.of(30_000, 50_000);
    const here = decodeBatchResult(encodeBatch({ level: 3, data: Uint8Array.from(data), lengths: lengths.slice() }));
    const pool = new CodecPool({ threads: 2 });
    try {
      expect(pool.threads).toBe(2);
      const there = await pool.run({ level: 3, data: Uint8Array.from(data), lengths: lengths.slice() });
      expect(Buffer.from(there.hashes)).toEqual(Buffer.from(here.hashes));
      expect(Buffer.from(there.payload)).toEqual(Buffer.from(here.payload));
    } finally {
      await pool.close();
    }
  });

  it('can be closed while its workers are still starting, with work queued', async () => {
    for (let i = 0; i < 20; i++) {
      const pool = new CodecPool({ threads: 3 });
      const queued = pool.run({ level: 1, data: new Uint8Array(4096).fill(i), lengths: Uint32Array.of(4096) }).catch(() => undefined);
      if (i % 2 === 1) await new Promise((r) => setImmediate(r));
      await pool.close();
      await queued;
    }
  });
});
