/**
 * Hostile test, issue 8 item 3: S3 deployment endpoints are an SSRF channel. With private addresses
 * not allowed (the default), an endpoint naming a loopback, private or link-local address (or
 * localhost) is refused at create and PATCH (400 invalid-param `s3.endpoint`); a name that resolves
 * to such an address is refused when connecting; and connection failures answer one generic message
 * that echoes neither the target's error nor the connect error (no port scanner).
 * Through the real binary (SQLite), with s3rver listening on loopback as the "internal" target.
 */
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublicAddress } from '../net/address-policy.js';
import { unusedPort } from '../pipeline/test-support/fixtures.js';
import { startS3Server, type S3TestServer } from '../test-support/s3.js';
import { orgAdmin, startRealServer, uniqueName, type RealServer } from './support-h8b.js';

describe('hostile: SSRF through S3 deployment endpoints (real binary, private addresses not allowed)', () => {
  let s3: S3TestServer;
  let server: RealServer;
  let org: { name: string; headers: Record<string, string> };
  const s3Body = (endpoint: string) => ({
    endpoint, region: s3.region, bucket: 'test', accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true,
  });

  beforeAll(async () => {
    s3 = await startS3Server({ buckets: ['test'] });
    server = await startRealServer();
    org = await orgAdmin(server);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await s3?.stop();
  });

  it('refuses endpoints naming loopback, private, link-local addresses or localhost at create and PATCH', async () => {
    const port = new URL(s3.endpoint).port;
    const endpoints = [
      s3.endpoint,
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `http://LOCALHOST.:${port}`,
      `http://sub.localhost:${port}`,
      `http://[::1]:${port}`,
      `http://[::ffff:127.0.0.1]:${port}`,
      `http://0.0.0.0:${port}`,
      `http://2130706433:${port}`,
      `http://0x7f.1:${port}`,
      'http://169.254.169.254',
      'http://10.0.0.1',
      'https://192.168.1.1',
      'http://[fd00::1]',
    ];
    for (const endpoint of endpoints) {
      const r = await server.req('POST', '/be/v1/deployments', { headers: org.headers, body: { name: uniqueName('d'), type: 's3', s3: s3Body(endpoint) } });
      expect(r.status, `${endpoint}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body).toMatchObject({ error: 'invalid-param', param: 's3.endpoint' });
    }
    expect(s3.requests()).toEqual([]);
    // PATCH of a deployment created with a public name cannot move it onto a private address.
    const name = uniqueName('d');
    const created = await server.req('POST', '/be/v1/deployments', { headers: org.headers, body: { name, type: 's3', s3: s3Body('https://s3.eu-west-1.amazonaws.com') } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    for (const endpoint of [s3.endpoint, 'http://169.254.169.254']) {
      const r = await server.req('PATCH', '/be/v1/deployments', { headers: org.headers, body: { name, s3: { endpoint } } });
      expect(r.status, `${endpoint}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body).toMatchObject({ error: 'invalid-param', param: 's3.endpoint' });
    }
  });

  it('refuses names that resolve to private addresses when connecting, with the same generic message as any connection failure', async () => {
    // This machine's own name resolves to a loopback or private address (/etc/hosts).
    const own = hostname();
    const addresses = await lookup(own, { all: true });
    expect(addresses.some((a) => !isPublicAddress(a.address))).toBe(true);
    const port = new URL(s3.endpoint).port;
    const closedPort = await unusedPort();
    const targets = [`http://${own}:${port}`, `http://${own}:${closedPort}`, 'http://no-such-host.invalid'];
    const answers: any[] = [];
    for (const endpoint of targets) {
      const name = uniqueName('d');
      // Accepted without a check (the name is not judged without DNS)...
      const created = await server.req('POST', '/be/v1/deployments', { headers: org.headers, body: { name, type: 's3', s3: s3Body(endpoint) } });
      expect(created.status, `${endpoint}: ${JSON.stringify(created.body)}`).toBe(201);
      // ...but a verify never connects there, and says nothing about what it found.
      const r = await server.req('PATCH', '/be/v1/deployments', { headers: org.headers, body: { name, verify: true } });
      expect(r.status, `${endpoint}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body).toMatchObject({ error: 'invalid-param', param: 's3' });
      answers.push({ message: r.body.message, check: r.body.check });
      // The create with verify: same answer.
      const v = await server.req('POST', '/be/v1/deployments', { headers: org.headers, body: { name: uniqueName('d'), type: 's3', s3: s3Body(endpoint), verify: true } });
      expect(v.status).toBe(400);
      answers.push({ message: v.body.message, check: v.body.check });
    }
    expect(s3.requests()).toEqual([]);
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    const text = JSON.stringify(answers[0]);
    for (const leak of ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', '127.0.0.1', 'private', String(closedPort), 'AddressRefused']) {
      expect(text).not.toContain(leak);
    }
  }, 60_000);
});
