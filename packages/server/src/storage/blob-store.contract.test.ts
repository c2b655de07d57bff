/**
 * One contract, two stores: every behaviour of `BlobStore` is checked on the fs store and on the
 * S3 store against a real S3-protocol server (s3rver).
 */
import { S3Client, HeadObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server } from '../test-support/s3.js';
import type { BlobStore } from './blob-store.js';
import { createBlobStore } from './create-blob-store.js';
import { FsBlobStore } from './fs-blob-store.js';
import { S3BlobStore } from './s3-blob-store.js';
import { isStorageError, type StorageErrorCode } from './storage-error.js';

const MIB = 1024 * 1024;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function collect(store: BlobStore, prefix: string, sort = false): Promise<[string, number][]> {
  const out: [string, number][] = [];
  for await (const { key, sizeBytes } of store.list(prefix)) out.push([key, sizeBytes]);
  return sort ? out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : out;
}

async function expectCode(promise: Promise<unknown>, code: StorageErrorCode): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isStorageError(err) ? err.code : err).toBe(code);
}

/** Deterministic bytes: chunk i of `chunkBytes` filled from a counter, so any slice is recomputable. */
function patternChunk(i: number, chunkBytes: number): Buffer {
  const b = Buffer.alloc(chunkBytes);
  for (let o = 0; o < chunkBytes; o += 4) b.writeUInt32LE((i * chunkBytes + o) >>> 0, o);
  return b;
}

interface Harness {
  store: BlobStore;
  /** Parts in flight allowed by the store's configuration, in bytes (bound for "not buffered whole"). */
  maxAheadBytes: number;
  /** How many multipart parts went up for `key` (S3) — undefined for the fs store. */
  partsOf?: (key: string) => Promise<number>;
  /**
   * Whether the backend lists in key order. S3 does; s3rver (the test server) lists in its
   * folder-walk order, so for it the listing is compared after sorting.
   */
  listsInKeyOrder: boolean;
  cleanup(): Promise<void>;
}

const harnesses: Record<'fs' | 's3', () => Promise<Harness>> = {
  async fs() {
    const root = await mkdtemp(join(tmpdir(), 'rockit-fsblob-'));
    const store = createBlobStore({ url: `file://${root}/store`, fsync: false });
    expect(store).toBeInstanceOf(FsBlobStore);
    return { store, maxAheadBytes: 4 * MIB, listsInKeyOrder: true, cleanup: () => rm(root, { recursive: true, force: true }) };
  },
  async s3() {
    const server = await startS3Server({ buckets: ['contract'] });
    const store = createBlobStore({
      url: 's3://contract/some/prefix',
      endpoint: server.endpoint,
      region: server.region,
      accessKeyId: server.accessKeyId,
      secretAccessKey: server.secretAccessKey,
      forcePathStyle: true,
      partSizeBytes: 5 * MIB,
      queueSize: 1,
      pageSize: 10,
    });
    expect(store).toBeInstanceOf(S3BlobStore);
    const raw = new S3Client({
      endpoint: server.endpoint,
      region: server.region,
      forcePathStyle: true,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
    return {
      store,
      // one part being uploaded + one being filled + stream buffers
      maxAheadBytes: 2 * 5 * MIB + 2 * MIB,
      listsInKeyOrder: false,
      async partsOf(key) {
        // A HEAD round trip first, so the child has reported every earlier request.
        await raw.send(new HeadObjectCommand({ Bucket: 'contract', Key: `some/prefix/${key}` }));
        const path = `/contract/some/prefix/${key}?`;
        return server.requests().filter((r) => r.startsWith(`PUT ${path}`) && r.includes('partNumber=')).length;
      },
      async cleanup() {
        raw.destroy();
        await store.close();
        await server.stop();
      },
    };
  },
};

describe.each(['fs', 's3'] as const)('BlobStore contract: %s', (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await harnesses[kind]();
  });
  afterAll(async () => {
    await h?.cleanup();
  });

  it('puts a buffer and reports size and sha256; gets it back whole', async () => {
    const body = Buffer.from('hello, rockit');
    const res = await h.store.put('a/hello.txt', body);
    expect(res).toEqual({ sizeBytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
    const got = await h.store.get('a/hello.txt');
    expect(got.sizeBytes).toBe(body.length);
    expect([got.start, got.end]).toEqual([0, body.length - 1]);
    expect((await readAll(got.body)).toString()).toBe('hello, rockit');
  });

  it('overwrites an object in place of the old one', async () => {
    await h.store.put('a/over.txt', Buffer.from('first version'));
    await h.store.put('a/over.txt', Readable.from([Buffer.from('v2')]));
    expect((await readAll((await h.store.get('a/over.txt')).body)).toString()).toBe('v2');
    expect(await h.store.head('a/over.txt')).toEqual({ sizeBytes: 2 });
  });

  it('stores and reads an empty object', async () => {
    const res = await h.store.put('a/empty', Buffer.alloc(0));
    expect(res.sizeBytes).toBe(0);
    const got = await h.store.get('a/empty');
    expect(got.sizeBytes).toBe(0);
    expect((await readAll(got.body)).length).toBe(0);
    await expectCode(h.store.get('a/empty', { start: 0 }), 'invalid-range');
  });

  it('reads ranges (inclusive end, open end, clamped end) and refuses ranges outside the object', async () => {
    const body = Buffer.from('0123456789abcdef');
    await h.store.put('r/range.bin', body);
    const mid = await h.store.get('r/range.bin', { start: 3, end: 6 });
    expect([mid.start, mid.end, mid.sizeBytes]).toEqual([3, 6, 16]);
    expect((await readAll(mid.body)).toString()).toBe('3456');
    const tail = await h.store.get('r/range.bin', { start: 10 });
    expect((await readAll(tail.body)).toString()).toBe('abcdef');
    expect([tail.start, tail.end]).toEqual([10, 15]);
    const clamped = await h.store.get('r/range.bin', { start: 14, end: 100 });
    expect((await readAll(clamped.body)).toString()).toBe('ef');
    expect(clamped.end).toBe(15);
    await expectCode(h.store.get('r/range.bin', { start: 16 }), 'invalid-range');
    await expectCode(h.store.get('r/range.bin', { start: 5, end: 4 }), 'invalid-range');
    await expectCode(h.store.get('r/range.bin', { start: -1, end: 4 }), 'invalid-range');
  });

  it('head returns size or null; get of a missing object is not-found', async () => {
    await h.store.put('h/x.bin', Buffer.alloc(1234, 1));
    expect(await h.store.head('h/x.bin')).toEqual({ sizeBytes: 1234 });
    expect(await h.store.head('h/missing.bin')).toBeNull();
    expect(await h.store.head('h')).toBeNull(); // a "folder" is not an object
    await expectCode(h.store.get('h/missing.bin'), 'not-found');
    await expectCode(h.store.get('h'), 'not-found');
  });

  it('lists by plain string prefix, in key order, with sizes', async () => {
    for (const key of ['l/b/2', 'l/b/1', 'l/a', 'l/b-c', 'l/bz/9', 'l/c/d/e', 'm/other']) {
      await h.store.put(key, Buffer.from(key));
    }
    const sort = !h.listsInKeyOrder;
    expect(await collect(h.store, 'l/', sort)).toEqual([
      ['l/a', 3],
      ['l/b-c', 5],
      ['l/b/1', 5],
      ['l/b/2', 5],
      ['l/bz/9', 6],
      ['l/c/d/e', 7],
    ]);
    expect((await collect(h.store, 'l/b', sort)).map(([k]) => k)).toEqual(['l/b-c', 'l/b/1', 'l/b/2', 'l/bz/9']);
    expect((await collect(h.store, 'l/b/', sort)).map(([k]) => k)).toEqual(['l/b/1', 'l/b/2']);
    expect(await collect(h.store, 'nothing/')).toEqual([]);
    const all = (await collect(h.store, '', sort)).map(([k]) => k);
    expect(all).toContain('m/other');
    expect(all).toContain('l/c/d/e');
    if (h.listsInKeyOrder) expect(all).toEqual([...all].sort());
  });

  it('lists and deletes across pages (the S3 harness uses pages of 10 keys)', async () => {
    const keys = Array.from({ length: 25 }, (_, i) => `p/k${String(i).padStart(4, '0')}`);
    await Promise.all(keys.map((k) => h.store.put(k, Buffer.from('x'))));
    const listed = (await collect(h.store, 'p/', !h.listsInKeyOrder)).map(([k]) => k);
    expect(listed).toEqual(keys);
    expect(await h.store.deletePrefix('p/')).toBe(25);
    expect(await collect(h.store, 'p/')).toEqual([]);
  });

  it('deletes one object (idempotently) and whole prefixes', async () => {
    await h.store.put('d/1', Buffer.from('1'));
    await h.store.put('d/sub/2', Buffer.from('2'));
    await h.store.put('d/sub/deeper/3', Buffer.from('3'));
    await h.store.put('dz/keep', Buffer.from('k'));
    await h.store.delete('d/1');
    await h.store.delete('d/1');
    await h.store.delete('d/never-existed');
    expect(await h.store.head('d/1')).toBeNull();
    expect(await h.store.deletePrefix('d/')).toBe(2);
    expect(await collect(h.store, 'd/')).toEqual([]);
    expect(await h.store.head('dz/keep')).toEqual({ sizeBytes: 1 });
    expect(await h.store.deletePrefix('d/')).toBe(0);
  });

  it('streams a large object (> 16 MiB) without buffering it whole, multipart on S3', async () => {
    const chunkBytes = MIB;
    const chunks = 24;
    const hash = createHash('sha256');
    let produced = 0;
    let stored = 0;
    let maxAhead = 0;
    const progress: number[] = [];
    async function* source() {
      for (let i = 0; i < chunks; i++) {
        maxAhead = Math.max(maxAhead, produced - stored);
        const c = patternChunk(i, chunkBytes);
        hash.update(c);
        produced += c.length;
        yield c;
      }
    }
    const res = await h.store.put('big/object.bin', Readable.from(source(), { objectMode: false, highWaterMark: 64 * 1024 }), {
      onProgress: (n) => {
        stored = n;
        progress.push(n);
      },
      expectedSizeBytes: chunks * chunkBytes,
    });
    expect(res).toEqual({ sizeBytes: chunks * chunkBytes, sha256: hash.digest('hex') });
    expect(progress.at(-1)).toBe(chunks * chunkBytes);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(maxAhead).toBeLessThanOrEqual(h.maxAheadBytes);
    if (h.partsOf) expect(await h.partsOf('big/object.bin')).toBe(5);

    // A range across a chunk boundary comes back exactly.
    const start = 5 * MIB - 10;
    const got = await h.store.get('big/object.bin', { start, end: start + 19 });
    const expected = Buffer.concat([patternChunk(4, chunkBytes), patternChunk(5, chunkBytes)]).subarray(MIB - 10, MIB + 10);
    expect((await readAll(got.body)).equals(expected)).toBe(true);
    expect(got.sizeBytes).toBe(chunks * chunkBytes);
    await h.store.delete('big/object.bin');
  });

  it('refuses keys and prefixes that could escape the root or are malformed', async () => {
    const bad = ['', '/abs', '../up', 'a/../../up', 'a//b', 'a/./b', 'a/', 'a\\b', 'nul\u0000x', '.rockit-tmp-x', 'a/.rockit-tmp'];
    for (const key of bad) {
      await expectCode(h.store.put(key, Buffer.from('x')), 'invalid-key');
      await expectCode(h.store.get(key), 'invalid-key');
      await expectCode(h.store.head(key), 'invalid-key');
      await expectCode(h.store.delete(key), 'invalid-key');
    }
    for (const prefix of ['../', '/x', 'a/../', '..']) {
      await expectCode(collect(h.store, prefix), 'invalid-key');
      await expectCode(h.store.deletePrefix(prefix), 'invalid-key');
    }
    await expectCode(h.store.put('x'.repeat(1025), Buffer.from('x')), 'invalid-key');
  });

  it('checks expected size and sha256 and leaves nothing behind on mismatch', async () => {
    await expectCode(h.store.put('e/size', Buffer.from('abc'), { expectedSizeBytes: 4 }), 'integrity');
    expect(await h.store.head('e/size')).toBeNull();
    await expectCode(h.store.put('e/sha', Buffer.from('abc'), { expectedSha256: '00'.repeat(32) }), 'integrity');
    expect(await h.store.head('e/sha')).toBeNull();
    const sha = createHash('sha256').update('abc').digest('hex');
    expect((await h.store.put('e/ok', Buffer.from('abc'), { expectedSizeBytes: 3, expectedSha256: sha.toUpperCase() })).sha256).toBe(sha);
  });

  it('a failing source leaves no object behind and keeps the old one', async () => {
    await h.store.put('f/obj', Buffer.from('old'));
    async function* failing() {
      yield Buffer.alloc(1000, 1);
      throw new Error('source broke');
    }
    const err = await h.store.put('f/obj', Readable.from(failing())).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((await readAll((await h.store.get('f/obj')).body)).toString()).toBe('old');
    await expectCode(h.store.put('f/new', Readable.from(failing())), 'io');
    expect(await h.store.head('f/new')).toBeNull();
  });

  it('an aborted put fails with aborted and stores nothing', async () => {
    const controller = new AbortController();
    async function* slow() {
      yield Buffer.alloc(1000, 1);
      controller.abort();
      yield Buffer.alloc(1000, 2);
      await new Promise((r) => setTimeout(r, 50));
      yield Buffer.alloc(1000, 3);
    }
    await expectCode(h.store.put('g/aborted', Readable.from(slow()), { signal: controller.signal }), 'aborted');
    expect(await h.store.head('g/aborted')).toBeNull();
  });

  it('describes itself without secrets', () => {
    const d = h.store.describe();
    expect(d.kind).toBe(kind);
    expect(d.location).not.toMatch(/S3RVER/);
    expect(d.capabilities.keyMayPrefixOtherKeys).toBe(kind === 's3');
  });
});

describe('fs blob store specifics', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'rockit-fsblob-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('leaves no temporary files and prunes emptied folders', async () => {
    const store = new FsBlobStore({ root: join(root, 'tidy') });
    await store.put('x/y/z', Buffer.from('1'));
    await store.put('x/y/w', Buffer.from('2'));
    expect(await readdir(join(root, 'tidy', 'x', 'y'))).toEqual(['w', 'z']);
    await store.delete('x/y/z');
    await store.deletePrefix('x/');
    expect(await readdir(join(root, 'tidy'))).toEqual([]);
  });

  it('puts into a folder survive concurrent deletes that empty and prune it', async () => {
    const store = new FsBlobStore({ root: join(root, 'race'), fsync: false });
    for (let i = 0; i < 30; i++) {
      await store.put('r/a/y', Buffer.from('y'));
      await Promise.all([store.delete('r/a/y'), store.put(`r/a/x${i}`, Buffer.from('x')), store.deletePrefix('r/a/x')]);
      await store.deletePrefix('r/');
    }
    await store.put('r/a/last', Buffer.from('z'));
    expect(await store.head('r/a/last')).toEqual({ sizeBytes: 1 });
  });

  it('a key that needs a file to be a folder is a conflict', async () => {
    const store = new FsBlobStore({ root: join(root, 'conflict') });
    await store.put('a/b', Buffer.from('file'));
    await expectCode(store.put('a/b/c', Buffer.from('x')), 'conflict');
    await expectCode(store.put('a', Buffer.from('x')), 'conflict');
  });

  it('a root under a file refuses writes with access-denied (works as root too)', async () => {
    await writeFile(join(root, 'plain-file'), 'x');
    const store = new FsBlobStore({ root: join(root, 'plain-file', 'store') });
    const err = await store.put('k', Buffer.from('x')).catch((e: unknown) => e);
    expect(isStorageError(err, 'access-denied')).toBe(true);
    expect((err as Error).message).not.toContain(root);
    expect(await collect(store, '')).toEqual([]);
  });

  it('refuses a relative root and unknown URL schemes', () => {
    expect(() => new FsBlobStore({ root: 'relative/path' })).toThrow(expect.objectContaining({ code: 'invalid-config' }));
    for (const url of ['http://x/y', 'relative', 'file://host/x', 's3://user:pw@bucket/x']) {
      expect(() => createBlobStore({ url })).toThrow(expect.objectContaining({ code: 'invalid-config' }));
    }
  });
});
