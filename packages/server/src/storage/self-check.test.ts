import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobStore } from './blob-store.js';
import { FsBlobStore } from './fs-blob-store.js';
import { SELF_CHECK_PREFIX, selfCheck } from './self-check.js';

describe('selfCheck', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rockit-selfcheck-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('succeeds on a working store and leaves nothing behind', async () => {
    const store = new FsBlobStore({ root: join(dir, 'ok'), fsync: false });
    const result = await selfCheck(store);
    expect(result.ok).toBe(true);
    expect(result.code).toBeUndefined();
    expect(result.ms).toBeGreaterThanOrEqual(0);
    const left: string[] = [];
    for await (const { key } of store.list(SELF_CHECK_PREFIX)) left.push(key);
    expect(left).toEqual([]);
  });

  it('detects a store that returns other bytes, and still removes the probe', async () => {
    const inner = new FsBlobStore({ root: join(dir, 'corrupt'), fsync: false });
    const corrupting: BlobStore = Object.create(inner) as BlobStore;
    corrupting.get = async (key, range) => {
      const r = await inner.get(key, range);
      r.body.destroy();
      return { ...r, body: Readable.from([Buffer.alloc(r.end - r.start + 1, 0)]) };
    };
    const result = await selfCheck(corrupting);
    expect(result).toMatchObject({ ok: false });
    expect(result.message).toContain('differs');
    const left: string[] = [];
    for await (const { key } of inner.list('')) left.push(key);
    expect(left).toEqual([]);
  });
});
