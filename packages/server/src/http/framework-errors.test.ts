import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { charsetOf } from './app.js';
import { createOrg, loginAdmin } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

describe('charsetOf', () => {
  it('reads the charset parameter, quoted or not', () => {
    expect(charsetOf('application/json')).toBeUndefined();
    expect(charsetOf(undefined)).toBeUndefined();
    expect(charsetOf('application/json; charset=utf-16')).toBe('utf-16');
    expect(charsetOf('application/json;CHARSET="UTF-8"')).toBe('UTF-8');
    expect(charsetOf('application/json; foo=bar; charset=latin1')).toBe('latin1');
  });
});

/** Issue 8 items 7 and 10 through inject, on each dialect: framework errors in the envelope, list bounds, charsets. */
describe.each(TEST_DIALECTS)('framework errors and charsets (%s)', (dialect) => {
  let t: TestServer;
  let h: Record<string, string>;
  let login: { orgName: string; username: string; password: string };
  beforeAll(async () => {
    t = await createTestServer({ dialect });
    const org = await createOrg(t);
    h = (await loginAdmin(t, org)).headers;
    login = { orgName: org.name, username: org.adminUsername, password: org.adminPassword };
  });
  afterAll(() => t?.close());

  const envelope = (r: { statusCode: number; headers: Record<string, unknown>; json(): any; body: string }, status: number, error: string) => {
    expect(r.statusCode, r.body).toBe(status);
    expect(r.json()).toMatchObject({ status: 'error', error });
    expect(r.headers['x-request-id']).toBeTruthy();
  };

  it('offsets beyond 2^53 - 1 are invalid-param on every list; the largest one is accepted', async () => {
    for (const list of ['/be/v1/users', '/be/v1/roles', '/be/v1/apps', '/be/v1/tasks', '/be/v1/deployments', '/be/v1/subscriptions']) {
      for (const offset of ['9223372036854775808', '9007199254740992', '1e400', '-1']) {
        const r = await t.req('GET', `${list}?offset=${offset}`, { headers: h });
        envelope(r, 400, 'invalid-param');
        expect(r.json().param, list).toBe('offset');
      }
      const max = await t.req('GET', `${list}?offset=9007199254740991`, { headers: h });
      expect(max.statusCode, `${list}: ${max.body}`).toBe(200);
      expect(max.json().total).toBeGreaterThanOrEqual(0);
    }
  });

  it('a path segment over 100 characters is 414 uri-too-long; a bad percent-encoding is invalid-param', async () => {
    envelope(await t.req('GET', `/be/v1/users/${'x'.repeat(101)}`, { headers: h }), 414, 'uri-too-long');
    envelope(await t.req('GET', `/be/v1/roles/${'x'.repeat(5000)}`, { headers: h }), 414, 'uri-too-long');
    // 100 characters reach the route (whose schema then judges the name).
    envelope(await t.req('GET', `/be/v1/users/${'x'.repeat(100)}`, { headers: h }), 400, 'invalid-param');
    envelope(await t.req('GET', '/be/v1/users/%E0%A4%A', { headers: h }), 400, 'invalid-param');
  });

  it('control characters or a backslash in a /cdn path are 404 not-found, never 500', async () => {
    for (const p of ['/cdn/dxf/a%5Cb', '/cdn/dxf/o/a%5C..%5Crelease.json', '/cdn/dxf/a%00b', '/cdn/pat/a%01b/release.json', '/cdn/dxf/%7F', '/cdn/dxf/a%0Ab']) {
      for (const method of ['GET', 'HEAD']) {
        const r = await t.req(method, p);
        expect(r.statusCode, `${method} ${p}: ${r.body}`).toBe(404);
        if (method === 'GET') envelope(r, 404, 'not-found');
      }
    }
  });

  it('JSON in a charset other than UTF-8 is 415; UTF-8 in any spelling is read', async () => {
    const body = JSON.stringify(login);
    for (const ct of ['application/json; charset=utf-16', 'application/json; charset=UTF-16LE', 'application/json; charset="iso-8859-1"', 'application/json; charset=']) {
      const r = await t.app.inject({ method: 'POST', url: '/be/v1/login', headers: { 'content-type': ct }, payload: body });
      envelope(r, 415, 'unsupported-media-type');
    }
    for (const ct of ['application/json', 'application/json; charset=utf-8', 'application/json;charset=UTF8', 'application/json; charset="utf-8"']) {
      const r = await t.app.inject({ method: 'POST', url: '/be/v1/login', headers: { 'content-type': ct }, payload: body });
      expect(r.statusCode, `${ct}: ${r.body}`).toBe(200);
    }
  });
});
