/**
 * Hostile test, issue 8 item 2: `s3://` import URLs (cluster mode) may name only the org's own
 * import prefix, `s3://<blob bucket>/<blob prefix>/incoming/<orgName>/…`. Anything else — another
 * bucket the installation's credentials reach, the depot, another org's prefix — is refused at
 * POST /be/v1/builds with 400 invalid-param `url` and one message, whether the object exists or not.
 * Through the real binary on PostgreSQL, with s3rver as the cluster's blob store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTar } from '../pipeline/test-support/fixtures.js';
import { createS3BlobStore } from '../storage/s3-blob-store.js';
import { startS3Server, type S3TestServer } from '../test-support/s3.js';
import { orgAdmin, startRealServer, type RealServer } from './support-h8b.js';

describe('hostile: s3:// import scope (cluster mode, real binary, PostgreSQL)', () => {
  let s3: S3TestServer;
  let server: RealServer;
  let a: { name: string; headers: Record<string, string> };
  let b: { name: string; headers: Record<string, string> };
  const store = (bucket: string, prefix = '') =>
    createS3BlobStore({ endpoint: s3.endpoint, region: s3.region, bucket, prefix, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true });

  beforeAll(async () => {
    s3 = await startS3Server({ buckets: ['blobs', 'secrets'] });
    server = await startRealServer({
      pg: true,
      env: {
        ROCKIT_BLOB_URL: 's3://blobs/inst',
        ROCKIT_S3_ENDPOINT: s3.endpoint,
        ROCKIT_S3_REGION: s3.region,
        ROCKIT_S3_ACCESS_KEY_ID: s3.accessKeyId,
        ROCKIT_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
        ROCKIT_S3_FORCE_PATH_STYLE: 'true',
      },
    });
    a = await orgAdmin(server);
    b = await orgAdmin(server);
    for (const org of [a, b]) {
      const r = await server.req('POST', '/be/v1/apps', { headers: org.headers, body: { name: 'game', label: 'Game' } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
    const tar = await makeTar([{ name: 'game.exe', content: 'hello' }]);
    const secrets = store('secrets');
    await secrets.put('private/build.tar', tar);
    await secrets.close();
    const blobs = store('blobs', 'inst');
    await blobs.put(`incoming/${a.name}/builds/v1.tar`, tar);
    await blobs.put(`incoming/${b.name}/builds/v1.tar`, tar);
    await blobs.close();
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await s3?.stop();
  });

  it('refuses every URL outside the org\'s own import prefix with one message, existing object or not', async () => {
    const refused = [
      's3://secrets/private/build.tar', // exists, another bucket
      's3://secrets/private/none.tar', // missing, another bucket
      `s3://blobs/inst/incoming/${b.name}/builds/v1.tar`, // another org's build
      `s3://blobs/inst/incoming/${a.name}/../${b.name}/builds/v1.tar`,
      `s3://blobs/inst/incoming/${a.name}/%2e%2e/${b.name}/builds/v1.tar`,
      `s3://blobs/inst/incoming/${a.name}%2F..%2F${b.name}/builds/v1.tar`,
      's3://blobs/inst/cdn/anything',
      's3://blobs/inst/imports/anything.tar',
      `s3://blobs/incoming/${a.name}/builds/v1.tar`, // outside the blob prefix
      `s3://blobs/inst/incoming/${a.name}/`,
      `s3://BLOBS/inst/incoming/${a.name}/builds/v1.tar`,
    ];
    const messages = new Set<string>();
    for (const url of refused) {
      const r = await server.req('POST', '/be/v1/builds', { headers: a.headers, body: { appName: 'game', url } });
      expect(r.status, `${url}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body).toMatchObject({ status: 'error', error: 'invalid-param', param: 'url' });
      messages.add(r.body.message);
    }
    expect([...messages]).toHaveLength(1);
    expect([...messages][0]).toContain(`s3://blobs/inst/incoming/${a.name}/`);
  });

  it('imports from the org\'s own prefix', async () => {
    const r = await server.req('POST', '/be/v1/builds', { headers: a.headers, body: { appName: 'game', url: `s3://blobs/inst/incoming/${a.name}/builds/v1.tar` } });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const name = r.body.task.name as string;
    let task: any;
    for (let i = 0; i < 200; i++) {
      task = (await server.req('GET', `/be/v1/tasks/${name}`, { headers: a.headers })).body.task;
      if (task.status !== 'submitted' && task.status !== 'running') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(task.status, JSON.stringify(task)).toBe('succeeded');
  }, 30_000);

  it('deleting an org with prune removes its import prefix (a later org of the same name finds nothing)', async () => {
    const blobs = store('blobs', 'inst');
    try {
      expect(await blobs.head(`incoming/${b.name}/builds/v1.tar`)).not.toBeNull();
      const del = await server.req('DELETE', `/adm/v1/orgs/${b.name}?prune=true`, { headers: server.admin });
      expect(del.status, JSON.stringify(del.body)).toBe(200);
      let gone = false;
      for (let i = 0; i < 100 && !gone; i++) {
        gone = (await blobs.head(`incoming/${b.name}/builds/v1.tar`)) === null;
        if (!gone) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(gone).toBe(true);
      expect(await blobs.head(`incoming/${a.name}/builds/v1.tar`)).not.toBeNull();
    } finally {
      await blobs.close();
    }
  }, 30_000);
});
