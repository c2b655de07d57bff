import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrg, loginAdmin, uniqueName, type Session } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

/**
 * Deployment settings under the default policies (issue 8 items 3 and 6): no private addresses
 * for S3 endpoints, fs paths judged by real path. The hostile suite repeats this through the binary.
 */
describe.each(TEST_DIALECTS)('deployment settings: address policy and real fs paths (%s)', (dialect) => {
  let t: TestServer;
  let admin: Session;
  let work: string;
  beforeAll(async () => {
    t = await createTestServer({ dialect, env: { ROCKIT_NO_WORKER: 'true' } });
    admin = await loginAdmin(t, await createOrg(t));
    work = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-policy-')));
  });
  afterAll(async () => {
    await t?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });
  const req = (method: string, url: string, body?: unknown) => t.req(method, url, { headers: admin.headers, body });
  const s3 = (endpoint: string) => ({ endpoint, region: 'us-east-1', bucket: 'cdn-bucket', accessKeyId: 'AKIA', secretAccessKey: 'secret-key-123' });

  it('s3: refuses private, loopback and link-local endpoints at create and PATCH; public names pass', async () => {
    for (const endpoint of ['http://127.0.0.1:9000', 'localhost:9000', 'http://169.254.169.254', 'http://[::1]', 'http://192.168.0.10', 'http://100.64.0.1', 'http://0.0.0.0']) {
      const r = await req('POST', '/be/v1/deployments', { name: uniqueName('d'), type: 's3', s3: s3(endpoint) });
      expect(r.statusCode, endpoint).toBe(400);
      expect(r.json()).toMatchObject({ status: 'error', error: 'invalid-param', param: 's3.endpoint' });
    }
    const name = uniqueName('d');
    expect((await req('POST', '/be/v1/deployments', { name, type: 's3', s3: s3('s3.eu-west-1.amazonaws.com') })).statusCode).toBe(201);
    expect((await req('POST', '/be/v1/deployments', { name: uniqueName('d'), type: 's3', s3: s3('http://93.184.215.14:9000') })).statusCode).toBe(201);
    const patched = await req('PATCH', '/be/v1/deployments', { name, s3: { endpoint: 'http://169.254.169.254' } });
    expect(patched.json()).toMatchObject({ error: 'invalid-param', param: 's3.endpoint' });
    expect((await req('GET', `/be/v1/deployments/${name}`)).json().deployment.s3.endpoint).toBe('s3.eu-west-1.amazonaws.com');
  });

  it('fs: refuses the data folder by real path, symlinks into it, NUL and dot segments; re-checks at PATCH', async () => {
    fs.symlinkSync(t.dataDir, path.join(work, 'to-data'));
    const refused = [
      `/proc/self/root${fs.realpathSync(t.dataDir)}/blobs`,
      path.join(work, 'to-data'),
      path.join(work, 'to-data', 'new', 'folder'),
      `${work}/site\u0000x`,
      `${work}/site\nx`,
      `${work}/./site`,
      `${work}/x/../site`,
    ];
    for (const p of refused) {
      const r = await req('POST', '/be/v1/deployments', { name: uniqueName('d'), type: 'fs', fs: { path: p } });
      expect(r.statusCode, JSON.stringify(p)).toBe(400);
      expect(r.json()).toMatchObject({ error: 'invalid-param', param: 'fs.path' });
    }
    const name = uniqueName('d');
    expect((await req('POST', '/be/v1/deployments', { name, type: 'fs', fs: { path: path.join(work, 'site') } })).statusCode).toBe(201);
    // An origin prefix that leads into the data folder from its parent is refused too.
    const parent = path.dirname(fs.realpathSync(t.dataDir));
    const viaPrefix = await req('PATCH', '/be/v1/deployments', { name, fs: { path: parent }, originPrefix: `${path.basename(t.dataDir)}/blobs` });
    expect(viaPrefix.json()).toMatchObject({ error: 'invalid-param', param: 'fs.path' });
    expect((await req('GET', `/be/v1/deployments/${name}`)).json().deployment.fs.path).toBe(path.join(work, 'site'));
  });
});
