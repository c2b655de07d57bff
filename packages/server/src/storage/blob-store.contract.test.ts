/**
 * One contract, two stores: every behaviour of `BlobStore` is checked on the fs store and on the
 * S3 store against a real S3-protocol server (s3rver).
 */
import { GetObjectAclCommand, S3Client, HeadObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server } from '../test-support/s3.js';
import { startStrictS3Fake, type StrictS3Fake } from '../test-support/s3-strict-fake.js';
import { MIN_MULTIPART_PART_BYTES, type BlobStore, type StoredPart } from './blob-store.js';
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
  /** A second store over the same folder or bucket, as another process would open it; close it after use. */
  reopen(): BlobStore;
  /** Names left in the fs store's multipart folder for an upload id — undefined for S3. */
  multipartLeftovers?: (uploadId: string) => Promise<string[]>;
  cleanup(): Promise<void>;
}

/**
 * Whether the backend itself refuses unknown upload ids and wrong part ETags and can abort an
 * upload. s3rver 3.7 does none of this (UploadPart creates any upload id it is given,
 * CompleteMultipartUpload ignores ETags, AbortMultipartUpload and ListMultipartUploads are not
 * implemented), so those cases run on the fs store only; the S3 store maps S3's answers
 * (NoSuchUpload, InvalidPart, EntityTooSmall) in `mapError`.
 */
const BACKEND_CHECKS_MULTIPART: Record<'fs' | 's3', boolean> = { fs: true, s3: false };

const harnesses: Record<'fs' | 's3', () => Promise<Harness>> = {
  async fs() {
    const root = await mkdtemp(join(tmpdir(), 'rockit-fsblob-'));
    const open = () => createBlobStore({ url: `file://${root}/store`, fsync: false });
    const store = open();
    expect(store).toBeInstanceOf(FsBlobStore);
    return {
      store,
      maxAheadBytes: 4 * MIB,
      listsInKeyOrder: true,
      reopen: open,
      async multipartLeftovers(uploadId) {
        const names = await readdir(join(root, 'store', '.rockit-tmp-multipart')).catch(() => []);
        return names.filter((n) => n.includes(uploadId));
      },
      cleanup: () => rm(root, { recursive: true, force: true }),
    };
  },
  async s3() {
    const server = await startS3Server({ buckets: ['contract'] });
    const open = () =>
      createBlobStore({
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
    const store = open();
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
      reopen: open,
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

  it('putFile stores a local file (linked on a folder store, uploaded on S3); localFile says where a folder store keeps it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rockit-putfile-'));
    try {
      const src = join(dir, 'pack.bin');
      const bytes = Buffer.from('immutable pack bytes');
      await writeFile(src, bytes);
      await h.store.put('f/pack.bin', Buffer.from('older object'));
      expect(await h.store.putFile('f/pack.bin', src, { expectedSizeBytes: bytes.length })).toEqual({ sizeBytes: bytes.length });
      expect((await readAll((await h.store.get('f/pack.bin')).body)).equals(bytes)).toBe(true);
      const local = h.store.localFile('f/pack.bin');
      if (kind === 'fs') {
        expect(local).not.toBeNull();
        // Same file system: a second name for the same bytes, not a copy.
        expect((await stat(local!)).ino).toBe((await stat(src)).ino);
      } else {
        expect(local).toBeNull();
      }
      await expectCode(h.store.putFile('f/other.bin', src, { expectedSizeBytes: bytes.length + 1 }), 'integrity');
      expect(await h.store.head('f/other.bin')).toBeNull();
      await expectCode(h.store.putFile('f/missing.bin', join(dir, 'nope.bin')), 'not-found');
      expect(() => h.store.localFile('../escape')).toThrow();
      // Another file system (tmpfs): no link possible, the bytes are copied.
      if (kind === 'fs' && existsSync('/dev/shm')) {
        const far = await mkdtemp('/dev/shm/rockit-putfile-');
        try {
          await writeFile(join(far, 'x.bin'), bytes);
          await h.store.putFile('f/far.bin', join(far, 'x.bin'));
          expect((await stat(h.store.localFile('f/far.bin')!)).ino).not.toBe((await stat(join(far, 'x.bin'))).ino);
          expect((await readAll((await h.store.get('f/far.bin')).body)).equals(bytes)).toBe(true);
        } finally {
          await rm(far, { recursive: true, force: true });
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('describes itself without secrets', () => {
    const d = h.store.describe();
    expect(d.kind).toBe(kind);
    expect(d.location).not.toMatch(/S3RVER/);
    expect(d.capabilities.keyMayPrefixOtherKeys).toBe(kind === 's3');
    expect(d.capabilities.multipartUpload).toBe(true);
  });

  describe('multipart', () => multipartContract(kind, () => h));
});

/**
 * The multipart part of the contract, on a harness made by the caller's beforeAll. `checks`: whether the
 * backend itself refuses unknown upload ids and wrong ETags, aborts and lists uploads.
 */
function multipartContract(kind: 'fs' | 's3', harness: () => Harness, checks = BACKEND_CHECKS_MULTIPART[kind]): void {
  let h: Harness;
  beforeAll(() => {
    h = harness();
  });
    const first = patternChunk(7, MIN_MULTIPART_PART_BYTES);
    const tail = Buffer.from('the last, short part');

    it('assembles parts in order (a part stored again replaces it); nothing is listed before completion', async () => {
      const key = 'mp/one/object.bin';
      const id = await h.store.createMultipart(key, { contentType: 'application/x-tar' });
      const p1 = await h.store.putPart(key, id, { partNumber: 1, offset: 0, body: first });
      expect(p1).toMatchObject({ partNumber: 1, sizeBytes: first.length });
      await h.store.putPart(key, id, { partNumber: 2, offset: first.length, body: Buffer.from('a first and longer version of part 2') });
      const p2 = await h.store.putPart(key, id, { partNumber: 2, offset: first.length, body: tail });
      expect(p2).toMatchObject({ partNumber: 2, sizeBytes: tail.length });
      expect(await collect(h.store, 'mp/')).toEqual([]);
      expect((await collect(h.store, '')).filter(([k]) => k.startsWith('mp/') || k.includes('rockit-tmp'))).toEqual([]);
      expect(await h.store.head(key)).toBeNull();

      const size = first.length + tail.length;
      expect(await h.store.completeMultipart(key, id, [p1, p2])).toEqual({ sizeBytes: size });
      expect(await h.store.head(key)).toEqual({ sizeBytes: size });
      expect((await readAll((await h.store.get(key)).body)).equals(Buffer.concat([first, tail]))).toBe(true);
      expect(await collect(h.store, 'mp/')).toEqual([[key, size]]);
      if (checks) {
        await expectCode(h.store.putPart(key, id, { partNumber: 3, offset: size, body: tail }), 'not-found');
        await expectCode(h.store.completeMultipart(key, id, [p1, p2]), 'not-found');
      }
      await h.store.delete(key);
    });

    it('another process continues the upload with its id and the parts stored so far', async () => {
      const key = 'mp/resumed.bin';
      const id = await h.store.createMultipart(key);
      const p1 = await h.store.putPart(key, id, { partNumber: 1, offset: 0, body: first });
      const other = h.reopen();
      try {
        const p2 = await other.putPart(key, id, { partNumber: 2, offset: p1.sizeBytes, body: tail });
        expect(await other.completeMultipart(key, id, [p1, p2])).toEqual({ sizeBytes: first.length + tail.length });
      } finally {
        await other.close();
      }
      expect((await readAll((await h.store.get(key)).body)).equals(Buffer.concat([first, tail]))).toBe(true);
      await h.store.delete(key);
    });

    it('the existing object stays readable until completion replaces it', async () => {
      const key = 'mp/replaced.txt';
      await h.store.put(key, Buffer.from('old'));
      const id = await h.store.createMultipart(key);
      const p1 = await h.store.putPart(key, id, { partNumber: 1, offset: 0, body: Buffer.from('new bytes') });
      expect((await readAll((await h.store.get(key)).body)).toString()).toBe('old');
      expect(await h.store.head(key)).toEqual({ sizeBytes: 3 });
      await h.store.completeMultipart(key, id, [p1]);
      expect((await readAll((await h.store.get(key)).body)).toString()).toBe('new bytes');
      await h.store.delete(key);
    });

    it('refuses part lists that do not match the stored parts with integrity; the upload stays usable', async () => {
      const key = 'mp/refused.txt';
      const id = await h.store.createMultipart(key);
      const p1 = await h.store.putPart(key, id, { partNumber: 1, offset: 0, body: Buffer.from('abc') });
      const p2 = await h.store.putPart(key, id, { partNumber: 2, offset: 3, body: Buffer.from('def') });
      const refused: StoredPart[][] = [
        [p1, p2], // part 1 is below the minimum but not last
        [p2], // does not start at 1
        [], // no part
      ];
      if (checks) refused.push([{ ...p1, etag: p2.etag }]);
      if (kind === 'fs') refused.push([{ ...p1, sizeBytes: 2 }]); // S3 checks ETags only
      for (const parts of refused) await expectCode(h.store.completeMultipart(key, id, parts), 'integrity');
      for (const partNumber of [0, 10_001, 1.5]) {
        await expectCode(h.store.putPart(key, id, { partNumber, offset: 0, body: Buffer.from('x') }), 'integrity');
      }
      expect(await h.store.head(key)).toBeNull();
      // Parts not listed are dropped.
      expect(await h.store.completeMultipart(key, id, [p1])).toEqual({ sizeBytes: 3 });
      expect((await readAll((await h.store.get(key)).body)).toString()).toBe('abc');
      await h.store.delete(key);
    });

    it('refuses a gap in the part numbers with integrity', async () => {
      const key = 'mp/gap.bin';
      const id = await h.store.createMultipart(key);
      const p1 = await h.store.putPart(key, id, { partNumber: 1, offset: 0, body: first });
      const p3 = await h.store.putPart(key, id, { partNumber: 3, offset: first.length, body: tail });
      await expectCode(h.store.completeMultipart(key, id, [p1, p3]), 'integrity');
      // Part 2 was never stored (s3rver would fail reading it, not answer InvalidPart).
      if (checks) await expectCode(h.store.completeMultipart(key, id, [p1, { ...p3, partNumber: 2 }]), 'integrity');
      expect(await h.store.head(key)).toBeNull();
      if (checks) await h.store.abortMultipart(key, id);
    });

    it.skipIf(!checks)('an unknown upload id is not-found for putPart and completeMultipart; abort is quiet', async () => {
      const key = 'mp/unknown.bin';
      const part = { partNumber: 1, offset: 0, body: Buffer.from('x') };
      const stored: StoredPart = { partNumber: 1, etag: 'x', sizeBytes: 1 };
      const other = await h.store.createMultipart('mp/another-key.bin');
      for (const id of ['0123456789abcdef0123456789abcdef', '../../x', '', other]) {
        await expectCode(h.store.putPart(key, id, part), 'not-found');
        await expectCode(h.store.completeMultipart(key, id, [stored]), 'not-found');
        await h.store.abortMultipart(key, id);
      }
      // Aborting it under the wrong key left it alone.
      await h.store.putPart('mp/another-key.bin', other, part);
      await h.store.abortMultipart('mp/another-key.bin', other);
    });

    it.skipIf(!checks)('lists the uploads in progress with their key and start; completed and aborted ones are gone', async () => {
      const before = Date.now() - 1000;
      const a = await h.store.createMultipart('mp/list-a.bin');
      const b = await h.store.createMultipart('mp/list-b.bin');
      const seen = async () => {
        const out: Array<{ key: string; uploadId: string; startedMs: number }> = [];
        for await (const u of h.store.listMultipart()) if (u.key.startsWith('mp/list-')) out.push(u);
        return out.sort((x, y) => (x.key < y.key ? -1 : 1));
      };
      const listed = await seen();
      expect(listed.map((u) => [u.key, u.uploadId])).toEqual([['mp/list-a.bin', a], ['mp/list-b.bin', b]]);
      for (const u of listed) expect(u.startedMs).toBeGreaterThan(before);
      const p = await h.store.putPart('mp/list-a.bin', a, { partNumber: 1, offset: 0, body: Buffer.from('x') });
      await h.store.completeMultipart('mp/list-a.bin', a, [p]);
      await h.store.abortMultipart('mp/list-b.bin', b);
      expect(await seen()).toEqual([]);
    });

    it.skipIf(!checks)('abort removes the upload and its parts', async () => {
      const key = 'mp/aborted.bin';
      const id = await h.store.createMultipart(key);
      const p1 = await h.store.putPart(key, id, { partNumber: 1, offset: 0, body: Buffer.from('abc') });
      if (h.multipartLeftovers) expect(await h.multipartLeftovers(id)).toEqual([id]);
      await h.store.abortMultipart(key, id);
      await h.store.abortMultipart(key, id);
      if (h.multipartLeftovers) expect(await h.multipartLeftovers(id)).toEqual([]);
      await expectCode(h.store.putPart(key, id, { partNumber: 2, offset: 3, body: Buffer.from('d') }), 'not-found');
      await expectCode(h.store.completeMultipart(key, id, [p1]), 'not-found');
      expect(await h.store.head(key)).toBeNull();
      expect(await collect(h.store, 'mp/aborted')).toEqual([]);
    });
}

/**
 * s3rver implements neither ListMultipartUploads nor AbortMultipartUpload and checks no ETags, and no
 * S3-compatible server is installable from Debian for CI: the S3 store's multipart calls run here
 * against a strict S3 protocol fake too, which answers as S3 documents and records any call it does
 * not know (the test fails on them).
 */
describe('BlobStore multipart contract: s3 against a strict S3 protocol fake', () => {
  let fake: StrictS3Fake;
  let h: Harness;
  beforeAll(async () => {
    fake = await startStrictS3Fake({ buckets: ['strict'] });
    const open = () =>
      createBlobStore({
        url: 's3://strict/some/prefix',
        endpoint: fake.endpoint,
        region: fake.region,
        accessKeyId: fake.accessKeyId,
        secretAccessKey: fake.secretAccessKey,
        forcePathStyle: true,
        partSizeBytes: 5 * MIB,
        queueSize: 1,
        pageSize: 1, // every listing pages
      });
    h = { store: open(), maxAheadBytes: 0, listsInKeyOrder: true, reopen: open, cleanup: async () => undefined };
  });
  afterAll(async () => {
    await h?.store.close();
    await fake?.stop();
  });

  describe('multipart', () => multipartContract('s3', () => h, true));

  it('made only S3 calls the fake knows, and listed and aborted through S3 itself', () => {
    expect(fake.unexpected()).toEqual([]);
    const calls = fake.calls();
    expect(calls.filter((c) => c === 'ListMultipartUploads').length).toBeGreaterThan(2); // paged by 1
    expect(calls).toContain('AbortMultipartUpload some/prefix/mp/aborted.bin');
    expect(calls).toContain('AbortMultipartUpload some/prefix/mp/list-b.bin');
  });

  it('the fake is strict: refuses unsigned requests and operations it does not know', async () => {
    const before = fake.unexpected().length;
    const unsigned = await fetch(`${fake.endpoint}/strict/some/prefix/x?uploads`, { method: 'POST' });
    expect(unsigned.status).toBe(403);
    expect(fake.unexpected().length).toBe(before + 1);
    // A signed call of an operation the fake does not know (GetObjectAcl) is refused and recorded too.
    const raw = new S3Client({
      endpoint: fake.endpoint, region: fake.region, forcePathStyle: true,
      credentials: { accessKeyId: fake.accessKeyId, secretAccessKey: fake.secretAccessKey },
    });
    try {
      const err = await raw.send(new GetObjectAclCommand({ Bucket: 'strict', Key: 'x' })).then(() => undefined, (e: unknown) => e);
      expect((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode).toBe(400);
    } finally {
      raw.destroy();
    }
    expect(fake.unexpected().length).toBe(before + 2);
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

  it('an upload in progress stays out of list and deletePrefix, and refuses malformed upload ids', async () => {
    const store = new FsBlobStore({ root: join(root, 'multipart'), fsync: true });
    const id = await store.createMultipart('k/obj');
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    const p1 = await store.putPart('k/obj', id, { partNumber: 1, offset: 0, body: Buffer.from('part one') });
    await store.put('k/other', Buffer.from('x'));
    expect(await collect(store, '')).toEqual([['k/other', 1]]);
    expect(await store.deletePrefix('')).toBe(1);
    for (const bad of ['../multipart', `${id}/..`, id.toUpperCase(), `${id}0`]) {
      await expectCode(store.putPart('k/obj', bad, { partNumber: 1, offset: 0, body: Buffer.from('x') }), 'not-found');
    }
    expect(await store.completeMultipart('k/obj', id, [p1])).toEqual({ sizeBytes: 8 });
    expect(await collect(store, '')).toEqual([['k/obj', 8]]);
    expect(await readdir(join(root, 'multipart', '.rockit-tmp-multipart'))).toEqual([]);
  });

  it('a part that overwrites the bytes of another drops that part: completing with it is refused', async () => {
    const store = new FsBlobStore({ root: join(root, 'overlap'), fsync: false });
    const id = await store.createMultipart('o');
    const min = MIN_MULTIPART_PART_BYTES;
    const p1 = await store.putPart('o', id, { partNumber: 1, offset: 0, body: Buffer.alloc(min + 2, 'a') });
    // Part 2 put where part 1 said it would end short of its real end: it overwrites part 1's last 2 bytes.
    const p2 = await store.putPart('o', id, { partNumber: 2, offset: min, body: Buffer.from('bbbb') });
    await expectCode(store.completeMultipart('o', id, [p1]), 'integrity');
    await expectCode(store.completeMultipart('o', id, [{ ...p2, partNumber: 1 }]), 'integrity');
    const again = await store.putPart('o', id, { partNumber: 1, offset: 0, body: Buffer.alloc(min, 'c') });
    expect(await store.completeMultipart('o', id, [again, p2])).toEqual({ sizeBytes: min + 4 });
    expect((await readAll((await store.get('o', { start: min - 2 })).body)).toString()).toBe('ccbbbb');
  });

  it('refuses a relative root and unknown URL schemes', () => {
    expect(() => new FsBlobStore({ root: 'relative/path' })).toThrow(expect.objectContaining({ code: 'invalid-config' }));
    for (const url of ['http://x/y', 'relative', 'file://host/x', 's3://user:pw@bucket/x']) {
      expect(() => createBlobStore({ url })).toThrow(expect.objectContaining({ code: 'invalid-config' }));
    }
  });
});
