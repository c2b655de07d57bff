/**
 * Origins (fs, S3 on s3rver, depot) with the documented layout: publish trees, release.json
 * last, refusing origins, settings validation.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server, type S3TestServer } from '../test-support/s3.js';
import type { BlobStore, PutOptions } from '../storage/blob-store.js';
import { createFsBlobStore } from '../storage/fs-blob-store.js';
import { isStorageError } from '../storage/storage-error.js';
import { selfCheck } from '../storage/self-check.js';
import { imagePrefix, patchPrefix, releaseKey } from './layout.js';
import { createDepotOrigin, createOrigin, findOriginSettingsProblem, type Origin, type OriginSettings } from './origin.js';
import { publishTree, removePrefix, writeReleaseLast } from './publisher.js';

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function keys(store: BlobStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const { key } of store.list(prefix)) out.push(key);
  return out.sort();
}

/** Wraps an origin so every completed put is recorded in order. */
function recording(origin: Origin): { origin: Origin; puts: string[] } {
  const puts: string[] = [];
  const store: BlobStore = Object.create(origin.store) as BlobStore;
  store.put = async (key: string, body: Readable | Buffer, options?: PutOptions) => {
    const r = await origin.store.put(key, body, options);
    puts.push(key);
    return r;
  };
  return { origin: { ...origin, store }, puts };
}

const SECRET = 'S3RVER-SECRET-THAT-MUST-NOT-LEAK';

describe('origins and publishing', () => {
  let dir: string;
  let s3: S3TestServer;
  let src: BlobStore;
  const image = { 'manifest.bin': Buffer.alloc(300, 1), 'packs/p0000.pack': Buffer.alloc(70_000, 2), 'packs/p0001.pack': Buffer.alloc(5, 3) };
  const patch = { 'patch.bin': Buffer.alloc(1234, 4) };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rockit-publish-'));
    s3 = await startS3Server({ buckets: ['cdn-bucket'] });
    src = createFsBlobStore({ root: join(dir, 'blobs'), fsync: false });
    for (const [name, body] of Object.entries(image)) await src.put(`images/acme/demo/3/${name}`, body);
    for (const [name, body] of Object.entries(patch)) await src.put(`patches/acme/demo/3-1/${name}`, body);
  });
  afterAll(async () => {
    await s3?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const settingsFor = (kind: 'fs' | 's3'): OriginSettings =>
    kind === 'fs'
      ? { type: 'fs', originPrefix: '/games/live/', fs: { path: join(dir, 'www') } }
      : {
          type: 's3',
          originPrefix: 'games/live',
          s3: { endpoint: s3.endpoint, region: s3.region, bucket: 'cdn-bucket', accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true },
        };

  describe.each(['fs', 's3'] as const)('%s origin', (kind) => {
    it('publishes image and patch in the documented layout, release.json last', async () => {
      const origin = createOrigin(settingsFor(kind), { fsync: false });
      try {
        expect((await selfCheck(origin.store)).ok).toBe(true);
        const rec = recording(origin);
        // writeReleaseLast treats the document as opaque JSON; its fields are pipeline/release.ts's business.
        const release = { format: 'rockit-release', orgName: 'acme', appName: 'demo', buildId: 3, dxfName: 'b0003-t000' };
        const result = await writeReleaseLast(rec.origin, {
          trees: [
            { src, srcPrefix: 'images/acme/demo/3/', destPrefix: imagePrefix('acme', 'demo', 3, 'b0003-t000') },
            { src, srcPrefix: 'patches/acme/demo/3-1/', destPrefix: patchPrefix('acme', 'demo', 3, 1) },
          ],
          releaseKey: releaseKey('acme', 'demo'),
          release,
        }, { concurrency: 2 });
        expect(result).toEqual({ files: 4, bytes: 300 + 70_000 + 5 + 1234 });
        expect(rec.puts.at(-1)).toBe('dxf/acme/demo/release.json');
        expect(rec.puts.slice(0, -1).sort()).toEqual([
          'dxf/acme/demo/0003/b0003-t000/manifest.bin',
          'dxf/acme/demo/0003/b0003-t000/packs/p0000.pack',
          'dxf/acme/demo/0003/b0003-t000/packs/p0001.pack',
          'pat/acme/demo/0003/0001/patch.bin',
        ]);
        expect(await keys(origin.store)).toEqual([...rec.puts].sort());
        const doc = JSON.parse((await readAll((await origin.store.get('dxf/acme/demo/release.json')).body)).toString());
        expect(doc).toEqual(release);
        const pack = await readAll((await origin.store.get('dxf/acme/demo/0003/b0003-t000/packs/p0000.pack')).body);
        expect(pack.equals(image['packs/p0000.pack'])).toBe(true);
        if (kind === 'fs') {
          // The origin prefix is a folder under fs.path: a static web server serves it as is.
          const onDisk = await readFile(join(dir, 'www', 'games', 'live', 'dxf', 'acme', 'demo', 'release.json'), 'utf8');
          expect(JSON.parse(onDisk)).toEqual(release);
        }

        expect(await removePrefix(origin, 'pat/acme/demo/0003/')).toBe(1);
        expect(await keys(origin.store, 'pat/')).toEqual([]);
      } finally {
        await origin.close();
      }
    });

    it('refuses to publish an empty tree or to non-folder prefixes', async () => {
      const origin = createOrigin(settingsFor(kind), { fsync: false });
      try {
        const empty = await publishTree(origin, src, 'images/nothing/', 'dxf/x/').catch((e: unknown) => e);
        expect(isStorageError(empty, 'not-found')).toBe(true);
        const notFolder = await publishTree(origin, src, 'images/acme', 'dxf/').catch((e: unknown) => e);
        expect(isStorageError(notFolder, 'invalid-key')).toBe(true);
      } finally {
        await origin.close();
      }
    });
  });

  it('an S3 origin with wrong credentials fails with access-denied, no secret in the message, no release.json', async () => {
    const settings = settingsFor('s3');
    const origin = createOrigin({ ...settings, s3: { ...settings.s3!, accessKeyId: s3.wrongCredentials.accessKeyId, secretAccessKey: SECRET } });
    try {
      const check = await selfCheck(origin.store);
      expect(check).toMatchObject({ ok: false, code: 'access-denied' });
      expect(check.message).not.toContain(SECRET);
      const err = await writeReleaseLast(origin, {
        trees: [{ src, srcPrefix: 'images/acme/demo/3/', destPrefix: 'dxf/acme/other/0003/b/' }],
        releaseKey: 'dxf/acme/other/release.json',
        release: { any: 'thing' },
      }).catch((e: unknown) => e);
      expect(isStorageError(err, 'access-denied')).toBe(true);
      expect((err as Error).message).not.toContain(SECRET);
      expect((err as Error).message).toContain('s3://cdn-bucket/games/live/');
    } finally {
      await origin.close();
    }
    const good = createOrigin(settings);
    try {
      expect(await good.store.head('dxf/acme/other/release.json')).toBeNull();
    } finally {
      await good.close();
    }
  });

  it('an fs origin under a file refuses writes; a failing tree leaves the previous release.json untouched', async () => {
    await writeFile(join(dir, 'not-a-folder'), 'x');
    const bad = createOrigin({ type: 'fs', fs: { path: join(dir, 'not-a-folder', 'www') } });
    const check = await selfCheck(bad.store);
    expect(check).toMatchObject({ ok: false, code: 'access-denied' });

    const origin = createOrigin({ type: 'fs', fs: { path: join(dir, 'www2') } }, { fsync: false });
    await origin.store.put('dxf/acme/demo/release.json', Buffer.from('{"buildId":2}'));
    const err = await writeReleaseLast(origin, {
      trees: [{ src, srcPrefix: 'images/missing/', destPrefix: 'dxf/acme/demo/0003/x/' }],
      releaseKey: 'dxf/acme/demo/release.json',
      release: { buildId: 3 },
    }).catch((e: unknown) => e);
    expect(isStorageError(err)).toBe(true);
    expect((await readAll((await origin.store.get('dxf/acme/demo/release.json')).body)).toString()).toBe('{"buildId":2}');
  });

  it('copies a tree\'s image.json after its other files; a failing copy leaves it and release.json unwritten', async () => {
    const tree = 'images/acme/demo/7/';
    for (let i = 0; i < 6; i++) await src.put(`${tree}packs/p${i}.pack`, Buffer.alloc(10_000 + i, i));
    await src.put(`${tree}image.json`, Buffer.from('{"build":7}'));
    const input = { trees: [{ src, srcPrefix: tree, destPrefix: imagePrefix('acme', 'demo', 7, 'b0007-t000') }], releaseKey: releaseKey('acme', 'demo'), release: { buildId: 7 } };

    const ok = recording(createOrigin({ type: 'fs', fs: { path: join(dir, 'www-order') } }, { fsync: false }));
    expect(await writeReleaseLast(ok.origin, input, { concurrency: 4 })).toMatchObject({ files: 7 });
    expect(ok.puts.slice(-2)).toEqual(['dxf/acme/demo/0007/b0007-t000/image.json', 'dxf/acme/demo/release.json']);

    const blocked = createOrigin({ type: 'fs', fs: { path: join(dir, 'www-blocked') } }, { fsync: false });
    // A folder where one pack must go: the origin cannot put that file (a real failure, no mock).
    await blocked.store.put('dxf/acme/demo/0007/b0007-t000/packs/p3.pack/blocker', Buffer.from('x'));
    const err = await writeReleaseLast(blocked, input, { concurrency: 4 }).catch((e: unknown) => e);
    expect(isStorageError(err)).toBe(true);
    expect(await blocked.store.head('dxf/acme/demo/0007/b0007-t000/image.json')).toBeNull();
    expect(await blocked.store.head('dxf/acme/demo/release.json')).toBeNull();
  });

  it('an unreachable S3 endpoint is reported as unreachable', async () => {
    const origin = createOrigin(
      { type: 's3', s3: { endpoint: '127.0.0.1:1', region: 'us-east-1', bucket: 'cdn-bucket', accessKeyId: 'a', secretAccessKey: SECRET, forcePathStyle: true } },
      { s3: { maxAttempts: 1, connectTimeoutMs: 2000 } },
    );
    try {
      const check = await selfCheck(origin.store);
      expect(check).toMatchObject({ ok: false, code: 'unreachable' });
      expect(check.message).not.toContain(SECRET);
    } finally {
      await origin.close();
    }
  });

  it('the depot is an origin inside the installation store', async () => {
    const depot = createDepotOrigin(src, 'cdn');
    await publishTree(depot, src, 'patches/acme/demo/3-1/', patchPrefix('acme', 'demo', 3, 1));
    expect(await src.head('cdn/pat/acme/demo/0003/0001/patch.bin')).toEqual({ sizeBytes: 1234 });
    expect(await keys(depot.store, 'pat/')).toEqual(['pat/acme/demo/0003/0001/patch.bin']);
    expect(await removePrefix(depot, 'pat/')).toBe(1);
  });

  it('validates deployment settings and names the faulty field', () => {
    const s3Settings = settingsFor('s3');
    expect(findOriginSettingsProblem(s3Settings)).toBeNull();
    expect(findOriginSettingsProblem(settingsFor('fs'))).toBeNull();
    expect(findOriginSettingsProblem({ type: 'fs', fs: { path: 'relative' } })?.param).toBe('fs.path');
    expect(findOriginSettingsProblem({ type: 'fs' })?.param).toBe('fs');
    expect(findOriginSettingsProblem({ type: 's3' })?.param).toBe('s3');
    expect(findOriginSettingsProblem({ ...s3Settings, originPrefix: '../up' })?.param).toBe('originPrefix');
    expect(findOriginSettingsProblem({ ...s3Settings, s3: { ...s3Settings.s3!, endpoint: 's3.amazonaws.com/mybucket' } })?.param).toBe('s3.endpoint');
    expect(findOriginSettingsProblem({ ...s3Settings, s3: { ...s3Settings.s3!, bucket: 'Bad_Bucket' } })?.param).toBe('s3.bucket');
    expect(findOriginSettingsProblem({ ...s3Settings, s3: { ...s3Settings.s3!, secretAccessKey: '' } })?.param).toBe('s3.secretAccessKey');
    expect(() => createOrigin({ type: 'fs' })).toThrow(expect.objectContaining({ code: 'invalid-config' }));
  });
});
