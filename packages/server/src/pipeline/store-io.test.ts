/**
 * store-io on a real fs blob store: concurrent uploads keep the pointer file last and stop on the
 * first failure without writing it; downloads come out whole or not at all.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { BlobStore, PutOptions, PutResult } from '../storage/blob-store.js';
import { FsBlobStore } from '../storage/fs-blob-store.js';
import { downloadPrefix, forEachLimited, uploadFolderExact } from './store-io.js';
import { makeTempDir, pseudoRandomBytes } from './test-support/fixtures.js';

/** A real store that records its completed puts in order. */
function recording(store: BlobStore, log: string[]): BlobStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'put') {
        return async (key: string, body: Buffer | Readable, opts?: PutOptions): Promise<PutResult> => {
          const r = await target.put(key, body, opts);
          log.push(key);
          return r;
        };
      }
      if (prop === 'putFile') {
        return async (key: string, path: string, opts?: { expectedSizeBytes?: number }): Promise<{ sizeBytes: number }> => {
          const r = await target.putFile(key, path, opts);
          log.push(key);
          return r;
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

async function keysOf(store: BlobStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out.sort();
}

/** A local image-like folder: 12 packs, a manifest and the image.json pointer. */
async function writeImageFolder(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (let i = 0; i < 12; i++) files.set(`packs/p${String(i).padStart(2, '0')}.rkp`, pseudoRandomBytes(20_000 + i * 1000, i));
  files.set('manifest-m1.rkm', pseudoRandomBytes(3_000, 99));
  files.set('image.json', Buffer.from('{"manifest":"manifest-m1.rkm"}'));
  for (const [rel, body] of files) {
    await mkdir(join(dir, ...rel.split('/').slice(0, -1)), { recursive: true });
    await writeFile(join(dir, ...rel.split('/')), body);
  }
  return files;
}

describe('store-io', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let local: string;
  let files: Map<string, Buffer>;

  beforeAll(async () => {
    tmp = await makeTempDir('store-io');
    local = join(tmp.dir, 'image');
    files = await writeImageFolder(local);
  });
  afterAll(async () => {
    await tmp.cleanup();
  });

  it('uploads a folder with several puts in flight, the pointer file last, and removes stale objects', async () => {
    const store = new FsBlobStore({ root: join(tmp.dir, 'depot-ok') });
    await store.put('img/stale.rkp', Buffer.from('old'));
    const log: string[] = [];
    const up = await uploadFolderExact(recording(store, log), local, 'img/', { last: ['image.json'], concurrency: 3 });
    expect(up).toEqual({ files: files.size, sizeBytes: [...files.values()].reduce((s, b) => s + b.length, 0) });
    expect(log.at(-1)).toBe('img/image.json');
    expect(log).toHaveLength(files.size);
    expect(await keysOf(store, 'img/')).toEqual([...files.keys()].map((k) => `img/${k}`).sort());

    // And back: the download holds the same bytes, and no partial folder is left beside it.
    const dest = join(tmp.dir, 'download', 'image');
    expect(await downloadPrefix(store, 'img/', dest, { concurrency: 3 })).toEqual(up);
    for (const [rel, body] of files) expect((await readFile(join(dest, ...rel.split('/')))).equals(body)).toBe(true);
    expect(await readdir(join(tmp.dir, 'download'))).toEqual(['image']);
  });

  it('stops at a failing put among concurrent ones, throws it, and never writes the pointer file', async () => {
    const store = new FsBlobStore({ root: join(tmp.dir, 'depot-blocked') });
    // A folder where one pack must go: the store cannot put that object (a real failure, no mock).
    await store.put('img/packs/p05.rkp/blocker', Buffer.from('x'));
    const log: string[] = [];
    await expect(uploadFolderExact(recording(store, log), local, 'img/', { last: ['image.json'], concurrency: 4 })).rejects.toMatchObject({
      name: 'StorageError',
    });
    expect(await store.head('img/image.json')).toBeNull();
    expect(log).not.toContain('img/image.json');
    // Nothing was left running: the listing is the same a moment later.
    const after = await keysOf(store, 'img/');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await keysOf(store, 'img/')).toEqual(after);
  });

  it('forEachLimited keeps at most `limit` calls in flight and reports the first failure after the others settle', async () => {
    let inFlight = 0;
    let peak = 0;
    const settled: number[] = [];
    const run = forEachLimited([1, 2, 3, 4, 5, 6, 7, 8], 3, async (n) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((resolve) => setTimeout(resolve, n === 2 ? 1 : 20));
      inFlight--;
      settled.push(n);
      if (n === 2) throw new Error('two failed');
    });
    await expect(run).rejects.toThrow('two failed');
    expect(peak).toBe(3);
    expect(inFlight).toBe(0);
    // 1 and 3 were in flight when 2 failed; they finished; nothing new started after the failure.
    expect(settled.sort()).toEqual([1, 2, 3]);
  });
});
