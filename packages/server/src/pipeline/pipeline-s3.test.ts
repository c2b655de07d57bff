// The three steps with the depot in an S3-compatible store (cluster mode), end to end:
// dltar into S3 → mkraw v1, v2 (+ patch) in S3 → deploy from S3 to a folder origin → apply the patch.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { applyPatch, extractImage } from '@rockit/engine';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createOrigin } from '../publish/origin.js';
import type { BlobStore } from '../storage/blob-store.js';
import { createS3BlobStore } from '../storage/s3-blob-store.js';
import { startS3Server, type S3TestServer } from '../test-support/s3.js';
import { deployRelease, readPublishedRelease } from './deploy.js';
import { obtainTar } from './dltar.js';
import { StepError } from './errors.js';
import { makeRelease } from './mkraw.js';
import { buildRelease } from './release.js';
import { makeTar, makeTempDir, pseudoRandomBytes, startHttpServer, type TestHttpServer } from './test-support/fixtures.js';

const MAX = 64 * 1024 * 1024;

async function keys(store: BlobStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

describe('pipeline with an S3 depot', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let s3: S3TestServer;
  let depot: BlobStore;
  let http: TestHttpServer;
  const pak = pseudoRandomBytes(300_000, 5);
  const tars: Record<string, Buffer> = {};

  beforeAll(async () => {
    tmp = await makeTempDir('pipeline-s3');
    s3 = await startS3Server({ buckets: ['depot'] });
    depot = createS3BlobStore({
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: 'depot',
      prefix: 'rockit',
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      forcePathStyle: true,
    });
    const pak2 = Buffer.from(pak);
    pak2.write('EDITED', 123_456);
    // Explicit folder entries: the engine's patch apply (so far) refuses files whose parent folder
    // is not an entry of the build, while tars without folder entries are valid (reported).
    tars['v1.tar'] = await makeTar([
      { name: 'bin/', type: 'directory' },
      { name: 'data/', type: 'directory' },
      { name: 'bin/run', content: pseudoRandomBytes(40_000, 6), mode: 0o755 },
      { name: 'data/a.pak', content: pak },
    ]);
    tars['v2.tar'] = await makeTar([
      { name: 'bin/', type: 'directory' },
      { name: 'data/', type: 'directory' },
      { name: 'bin/run', content: pseudoRandomBytes(40_000, 6), mode: 0o755 },
      { name: 'data/a.pak', content: pak2 },
      { name: 'data/new.txt', content: 'new in v2' },
    ]);
    tars['page.html'] = Buffer.from('<html>not a build</html>'.padEnd(4096, ' '));
    http = await startHttpServer((req, res) => {
      const body = tars[(req.url ?? '/').slice(1)];
      if (!body) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
  });

  afterAll(async () => {
    await http?.close();
    await depot?.close();
    await s3?.stop();
    await tmp.cleanup();
  });

  it('downloads into S3, refusing a non-tar without leaving an object', async () => {
    const err = await obtainTar({ url: `${http.baseUrl}/page.html`, blobStore: depot, destKey: 'uploads/acme/demo/bad.tar', maxBytes: MAX }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StepError);
    expect((err as StepError).code).toBe('not-a-tar');
    expect(await depot.head('uploads/acme/demo/bad.tar')).toBeNull();
    for (const v of [1, 2]) {
      const got = await obtainTar({ url: `${http.baseUrl}/v${v}.tar`, blobStore: depot, destKey: `uploads/acme/demo/${v}.tar`, maxBytes: MAX });
      expect(got.sizeBytes).toBe(tars[`v${v}.tar`].length);
    }
  });

  it('makes images and a patch in S3 and deploys them to a folder origin', async () => {
    const work = join(tmp.dir, 'work');
    const common = { orgName: 'acme', appName: 'demo', blobStore: depot, depotPrefix: 'cdn/', workDir: work, threads: 0 };
    await makeRelease({ ...common, buildId: 1, buildName: '1', tarKey: 'uploads/acme/demo/1.tar', previous: [] });
    // A cold cache: the previous image must come from S3.
    await rm(join(work, 'image-cache'), { recursive: true, force: true });
    const r2 = await makeRelease({ ...common, buildId: 2, buildName: '2', tarKey: 'uploads/acme/demo/2.tar', previous: [{ buildId: 1, dxfName: 'b0001-t000' }] });
    expect(r2.warnings).toEqual([]);
    expect(r2.patches.map((p) => p.path)).toEqual(['pat/acme/demo/0002/0001/']);
    expect((await keys(depot, 'cdn/pat/acme/demo/0002/0001/')).length).toBeGreaterThan(0);

    const release = buildRelease({
      orgName: 'acme',
      appName: 'demo',
      buildId: 2,
      buildName: '2',
      dxfName: r2.dxfName,
      manifestFile: r2.image.manifest,
      imageSizeBytes: r2.sizeBytes,
      patches: r2.patches,
      created: 1_700_000_000,
    });
    const www = join(tmp.dir, 'www');
    const origin = createOrigin({ type: 'fs', fs: { path: www } }, { fsync: false });
    const [result] = await deployRelease({ release, depot: { store: depot, prefix: 'cdn/' }, targets: [{ deployment: 'www', origin }] });
    expect(result.ok).toBe(true);
    expect(await readPublishedRelease(origin.store, 'acme', 'demo')).toEqual(release);

    // A launcher holding v1 (extracted from the v1 image) patches to v2 from the folder origin.
    const v1Dir = join(tmp.dir, 'v1');
    const depotOrigin = createOrigin({ type: 'fs', fs: { path: join(tmp.dir, 'v1-image') } }, { fsync: false });
    for (const k of await keys(depot, 'cdn/dxf/acme/demo/0001/b0001-t000/')) {
      await depotOrigin.store.put(k.slice('cdn/dxf/acme/demo/0001/b0001-t000/'.length), (await depot.get(k)).body);
    }
    await extractImage({ source: join(tmp.dir, 'v1-image'), outDir: v1Dir });
    const v2Dir = join(tmp.dir, 'v2');
    await applyPatch({ patch: join(www, 'pat/acme/demo/0002/0001'), fromDir: v1Dir, outDir: v2Dir });
    expect(await readFile(join(v2Dir, 'data/new.txt'), 'utf8')).toBe('new in v2');
    expect((await readFile(join(v2Dir, 'data/a.pak'))).subarray(123_456, 123_462).toString()).toBe('EDITED');
  });
});
