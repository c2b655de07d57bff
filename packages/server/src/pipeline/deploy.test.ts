import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createDepotOrigin, createOrigin, type Origin } from '../publish/origin.js';
import type { BlobStore, PutOptions, PutResult } from '../storage/blob-store.js';
import { FsBlobStore } from '../storage/fs-blob-store.js';
import { startS3Server, type S3TestServer } from '../test-support/s3.js';
import { DeployError, deployRelease, readPublishedRelease, removeExpired, type DeployTarget } from './deploy.js';
import { StepError } from './errors.js';
import { buildRelease, parseRelease, planCleanup, type ReleaseDocument } from './release.js';
import { makeTempDir, pseudoRandomBytes } from './test-support/fixtures.js';

/** A real store that records the order of its puts (to check what is written last). */
function recording(store: BlobStore, log: string[]): BlobStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'put') {
        return async (key: string, body: Buffer | import('node:stream').Readable, opts?: PutOptions): Promise<PutResult> => {
          const r = await target.put(key, body, opts);
          log.push(key);
          return r;
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

async function keysOf(store: BlobStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

async function readAll(store: BlobStore, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of (await store.get(key)).body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Puts the files of a release (built by hand: deploy does not look inside them) into the depot. */
async function seedDepot(depot: FsBlobStore, buildId: number, from: number[]): Promise<ReleaseDocument> {
  const b = String(buildId).padStart(4, '0');
  const img = `cdn/dxf/acme/demo/${b}/b${b}-t000/`;
  const files: Array<[string, Buffer]> = [
    [`${img}packs/p${b}a.rkp`, pseudoRandomBytes(70_000, buildId)],
    [`${img}packs/p${b}b.rkp`, pseudoRandomBytes(20_000, buildId + 100)],
    [`${img}manifest-m${b}.rkm`, pseudoRandomBytes(3_000, buildId + 200)],
    [`${img}image.json`, Buffer.from(`{"build":${buildId}}`)],
  ];
  for (const f of from) {
    const p = `cdn/pat/acme/demo/${b}/${String(f).padStart(4, '0')}/`;
    files.push([`${p}data.rkpd`, pseudoRandomBytes(5_000, buildId * 10 + f)], [`${p}patch.json`, Buffer.from(`{"from":${f}}`)]);
  }
  for (const [k, v] of files) await depot.put(k, v);
  const size = (prefix: string): number => files.filter(([k]) => k.startsWith(prefix)).reduce((s, [, v]) => s + v.length, 0);
  return buildRelease({
    orgName: 'acme',
    appName: 'demo',
    buildId,
    buildName: `v${buildId}`,
    dxfName: `b${b}-t000`,
    manifestFile: `manifest-m${b}.rkm`,
    imageSizeBytes: size(img),
    patches: from.map((f) => ({ fromBuildId: f, sizeBytes: size(`cdn/pat/acme/demo/${b}/${String(f).padStart(4, '0')}/`) })),
    created: 1_700_000_000,
  });
}

describe('deployRelease', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let depot: FsBlobStore;
  let s3: S3TestServer;
  let fsOrigin: Origin;
  let s3Origin: Origin;

  beforeAll(async () => {
    tmp = await makeTempDir('deploy');
    depot = new FsBlobStore({ root: join(tmp.dir, 'depot'), fsync: false });
    s3 = await startS3Server({ buckets: ['cdn'] });
    fsOrigin = createOrigin({ type: 'fs', originPrefix: 'games', fs: { path: join(tmp.dir, 'www') } }, { fsync: false });
    s3Origin = createOrigin({
      type: 's3',
      originPrefix: 'edge',
      s3: { endpoint: s3.endpoint, region: s3.region, bucket: 'cdn', accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true },
    });
  });

  afterAll(async () => {
    await s3Origin?.close();
    await s3?.stop();
    await tmp.cleanup();
  });

  it('publishes to an fs and an s3 origin in the documented layout, release.json last', async () => {
    const release = await seedDepot(depot, 2, [1]);
    const logFs: string[] = [];
    const logS3: string[] = [];
    const targets: DeployTarget[] = [
      { deployment: 'www', origin: { ...fsOrigin, store: recording(fsOrigin.store, logFs) } },
      { deployment: 'cdn_eu', origin: { ...s3Origin, store: recording(s3Origin.store, logS3) } },
    ];
    const results = await deployRelease({ release, depot: { store: depot, prefix: 'cdn/' }, targets });
    expect(results.map((r) => [r.deployment, r.ok, r.filesCopied, r.filesSkipped, r.releaseWritten])).toEqual([
      ['www', true, 6, 0, true],
      ['cdn_eu', true, 6, 0, true],
    ]);
    const expected = [
      'dxf/acme/demo/0002/b0002-t000/image.json',
      'dxf/acme/demo/0002/b0002-t000/manifest-m0002.rkm',
      'dxf/acme/demo/0002/b0002-t000/packs/p0002a.rkp',
      'dxf/acme/demo/0002/b0002-t000/packs/p0002b.rkp',
      'dxf/acme/demo/release.json',
      'pat/acme/demo/0002/0001/data.rkpd',
      'pat/acme/demo/0002/0001/patch.json',
    ];
    for (const [origin, log] of [
      [fsOrigin, logFs],
      [s3Origin, logS3],
    ] as const) {
      expect((await keysOf(origin.store)).sort()).toEqual(expected);
      expect(log.at(-1)).toBe('dxf/acme/demo/release.json');
      // Pointer files come after every other file.
      const firstPointer = log.findIndex((k) => k.endsWith('image.json') || k.endsWith('patch.json'));
      expect(log.slice(firstPointer, -1).every((k) => k.endsWith('image.json') || k.endsWith('patch.json'))).toBe(true);
      expect(await readPublishedRelease(origin.store, 'acme', 'demo')).toEqual(release);
      expect((await readAll(origin.store, 'dxf/acme/demo/0002/b0002-t000/packs/p0002a.rkp')).equals(pseudoRandomBytes(70_000, 2))).toBe(true);
    }
    // The origin prefix is honoured: the files are under www/games/ and edge/ respectively.
    expect(await new FsBlobStore({ root: join(tmp.dir, 'www') }).head('games/dxf/acme/demo/release.json')).not.toBeNull();

    // Again: content-addressed files already there are skipped; pointers and release.json rewritten.
    const again = await deployRelease({ release, depot: { store: depot, prefix: 'cdn/' }, targets: [{ deployment: 'www', origin: fsOrigin }] });
    expect(again[0]).toMatchObject({ ok: true, filesCopied: 2, filesSkipped: 4, releaseWritten: true });
  });

  it('names the deployment that refuses writes, publishes the others, and writes no release.json there', async () => {
    const release = await seedDepot(depot, 3, [2, 1]);
    const bad = createOrigin({
      type: 's3',
      originPrefix: 'bad',
      s3: {
        endpoint: s3.endpoint,
        region: s3.region,
        bucket: 'cdn',
        accessKeyId: s3.wrongCredentials.accessKeyId,
        secretAccessKey: s3.wrongCredentials.secretAccessKey,
        forcePathStyle: true,
        },
    }, { s3: { maxAttempts: 1 } });
    try {
      const err = await deployRelease({
        release,
        depot: { store: depot, prefix: 'cdn/' },
        targets: [
          { deployment: 'cdn_bad', origin: bad },
          { deployment: 'www', origin: fsOrigin },
        ],
      }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DeployError);
      const de = err as DeployError;
      expect(de.toTaskError()).toMatchObject({ code: 'deploy-failed', deployment: 'cdn_bad' });
      expect(de.message).toContain('cdn_bad');
      expect(de.message).not.toContain(s3.wrongCredentials.secretAccessKey);
      expect(de.results.map((r) => [r.deployment, r.ok, r.releaseWritten])).toEqual([
        ['cdn_bad', false, false],
        ['www', true, true],
      ]);
      // Nothing named release.json on the refusing origin (read with good credentials).
      const sameBucket = createOrigin({
        type: 's3',
        originPrefix: 'bad',
        s3: { endpoint: s3.endpoint, region: s3.region, bucket: 'cdn', accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true },
      });
      expect(await sameBucket.store.head('dxf/acme/demo/release.json')).toBeNull();
      await sameBucket.close();
      expect(parseRelease(await readAll(fsOrigin.store, 'dxf/acme/demo/release.json')).buildId).toBe(3);
    } finally {
      await bad.close();
    }
  });

  it('fails a target when one of its concurrent copies fails, writing neither its image.json nor release.json', async () => {
    const release = await seedDepot(depot, 5, []);
    const www = createOrigin({ type: 'fs', originPrefix: 'games', fs: { path: join(tmp.dir, 'www-blocked') } }, { fsync: false });
    // A folder where one pack must go: the origin cannot put that file (a real failure, no mock).
    await www.store.put('dxf/acme/demo/0005/b0005-t000/packs/p0005a.rkp/blocker', Buffer.from('x'));
    const err = await deployRelease({ release, depot: { store: depot, prefix: 'cdn/' }, targets: [{ deployment: 'www', origin: www }], concurrency: 4 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DeployError);
    expect((err as DeployError).results.map((r) => [r.deployment, r.ok, r.releaseWritten])).toEqual([['www', false, false]]);
    expect((err as DeployError).message).toContain('www');
    expect(await www.store.head('dxf/acme/demo/0005/b0005-t000/image.json')).toBeNull();
    expect(await www.store.head('dxf/acme/demo/release.json')).toBeNull();
  });

  it('refuses a release whose files are not in the depot, writing nothing', async () => {
    const release = buildRelease({
      orgName: 'acme',
      appName: 'ghost',
      buildId: 1,
      buildName: '1',
      dxfName: 'b0001-t000',
      manifestFile: 'manifest-x.rkm',
      imageSizeBytes: 1,
      patches: [],
      created: 1,
    });
    const err = await deployRelease({ release, depot: { store: depot, prefix: 'cdn/' }, targets: [{ deployment: 'www', origin: fsOrigin }] }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StepError);
    expect((err as StepError).code).toBe('storage-failed');
    expect(await keysOf(fsOrigin.store, 'dxf/acme/ghost/')).toEqual([]);
  });

  it('removes what a rotation made unneeded after the grace period, keeping the current release whole', async () => {
    // Origin holds release 3 (from 2, 1); publish release 4 (from 3, 2) with maxBuilds 3, then clean up.
    const prev = await seedDepot(depot, 3, [2, 1]);
    const next = await seedDepot(depot, 4, [3, 2]);
    const targets = [{ deployment: 'www', origin: fsOrigin }];
    expect(await readPublishedRelease(fsOrigin.store, 'acme', 'nothing')).toBeNull();
    await deployRelease({ release: prev, depot: { store: depot, prefix: 'cdn/' }, targets });
    await deployRelease({ release: next, depot: { store: depot, prefix: 'cdn/' }, targets });
    const plan = planCleanup(prev, next, 1_000, 86_400);
    expect(plan.notBefore).toBe(87_400);
    const removed = await removeExpired(targets, plan.origins);
    expect(removed[0].ok).toBe(true);
    const left = await keysOf(fsOrigin.store, 'dxf/acme/demo/');
    expect(left.filter((k) => !k.startsWith('dxf/acme/demo/0002/'))).toEqual([
      'dxf/acme/demo/0004/b0004-t000/image.json',
      'dxf/acme/demo/0004/b0004-t000/manifest-m0004.rkm',
      'dxf/acme/demo/0004/b0004-t000/packs/p0004a.rkp',
      'dxf/acme/demo/0004/b0004-t000/packs/p0004b.rkp',
      'dxf/acme/demo/release.json',
    ]);
    expect(await keysOf(fsOrigin.store, 'pat/acme/demo/0003/')).toEqual([]);
    expect((await keysOf(fsOrigin.store, 'pat/acme/demo/0004/')).length).toBe(4);
    // In the depot, the image of build 1 (no longer kept) goes; kept builds 2 and 3 stay.
    const depotTarget = { deployment: 'depot', origin: createDepotOrigin(depot, 'cdn') };
    await removeExpired([depotTarget], plan.depot);
    expect(await keysOf(depot, 'cdn/dxf/acme/demo/0001/')).toEqual([]);
    expect((await keysOf(depot, 'cdn/dxf/acme/demo/0002/')).length).toBe(4);
    expect((await keysOf(depot, 'cdn/dxf/acme/demo/0003/')).length).toBe(4);
    expect(await keysOf(depot, 'cdn/pat/acme/demo/0003/')).toEqual([]);
    await expect(removeExpired(targets, ['../etc/'])).rejects.toThrow(TypeError);
  });
});
