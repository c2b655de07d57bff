import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostileLogin, hostileOrg, rawRequest, startEdge, type EdgeProcess, type RawResponse } from './support-h8a.js';

/** Issue 8 item 7: every framework error answers in the envelope with x-request-id; no 500 for hostile input. */
describe('hostile: framework errors in the envelope (issue 8 item 7)', () => {
  let edge: EdgeProcess;
  let h: Record<string, string>;

  beforeAll(async () => {
    edge = await startEdge({ ROCKIT_BODY_LIMIT_BYTES: '2048' });
    const org = await hostileOrg(edge, 'hostile_fw');
    h = await hostileLogin(edge, org.name, org.username, org.password);
  }, 60_000);
  afterAll(() => edge?.stop());

  const envelope = (r: RawResponse, status: number, error: string) => {
    expect(r.status, r.text).toBe(status);
    expect(r.json, r.text).toMatchObject({ status: 'error', error });
    expect(typeof r.json.message).toBe('string');
    expect(r.headers['x-request-id']).toBeTruthy();
  };

  it('an offset beyond 2^63 is invalid-param, not 500', async () => {
    for (const list of ['/be/v1/users', '/be/v1/roles', '/be/v1/apps', '/be/v1/tasks']) {
      envelope(await rawRequest(edge, 'GET', `${list}?offset=9223372036854775808`, { headers: h }), 400, 'invalid-param');
      envelope(await rawRequest(edge, 'GET', `${list}?offset=1e400`, { headers: h }), 400, 'invalid-param');
    }
  });

  it('control characters or a backslash in a /cdn path answer 404 in the envelope, not 500', async () => {
    for (const p of ['/cdn/a%5Cb', '/cdn/org/%5C..%5Csecret', '/cdn/a%00b', '/cdn/a%01b/release.json', '/cdn/%7F', '/cdn/a\\b']) {
      const r = await rawRequest(edge, 'GET', p);
      expect(r.status, `${p}: ${r.text}`).toBeLessThan(500);
      envelope(r, r.status, r.status === 404 ? 'not-found' : 'invalid-param');
    }
  });

  it('a path parameter over 100 characters answers 414 uri-too-long in the envelope', async () => {
    envelope(await rawRequest(edge, 'GET', `/be/v1/users/${'u'.repeat(300)}`, { headers: h }), 414, 'uri-too-long');
  });

  it('unknown routes, 413, 415 and unparsable JSON answer in the envelope', async () => {
    envelope(await rawRequest(edge, 'GET', '/nope/at/all'), 404, 'not-found');
    envelope(await rawRequest(edge, 'POST', '/be/v1/login', { body: { orgName: 'x'.repeat(5000), username: 'a', password: 'b' } }), 413, 'payload-too-large');
    envelope(await rawRequest(edge, 'POST', '/be/v1/login', { headers: { 'content-type': 'text/xml' }, body: '<a/>' }), 415, 'unsupported-media-type');
    envelope(await rawRequest(edge, 'POST', '/be/v1/login', { body: '{"orgName":' }), 400, 'invalid-json');
    envelope(await rawRequest(edge, 'GET', '/be/v1/users/%E0%A4%A', { headers: h }), 400, 'invalid-param');
  });
});
