import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrg, loginAdmin } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

/** Issue 8 item 8: the upload URL starts with ROCKIT_PUBLIC_URL whatever Host or X-Forwarded-* say. */
describe.each(TEST_DIALECTS)('upload URL from ROCKIT_PUBLIC_URL (%s)', (dialect) => {
  let t: TestServer;
  let h: Record<string, string>;
  beforeAll(async () => {
    t = await createTestServer({ dialect, env: { ROCKIT_PUBLIC_URL: 'https://edge.example.com/base/', ROCKIT_TRUST_PROXY: 'true' } });
    h = (await loginAdmin(t, await createOrg(t))).headers;
    expect((await t.req('POST', '/be/v1/apps', { headers: h, body: { name: 'game', label: 'Game' } })).statusCode).toBe(201);
  });
  afterAll(() => t?.close());

  it('ignores Host, X-Forwarded-Host and X-Forwarded-Proto', async () => {
    const forgeries: Record<string, string>[] = [{ host: 'attacker.example' }, { 'x-forwarded-host': 'attacker.example', 'x-forwarded-proto': 'http' }];
    for (const forged of forgeries) {
      const r = await t.req('POST', '/be/v1/builds', { headers: { ...h, ...forged }, body: { appName: 'game' } });
      expect(r.statusCode, r.body).toBe(202);
      expect(r.json().upload.url).toMatch(/^https:\/\/edge\.example\.com\/base\/be\/v1\/uploads\/[^/?]+\?token=rkup_/);
    }
  });
});
