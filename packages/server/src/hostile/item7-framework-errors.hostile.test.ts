import net from 'node:net';
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
    for (const p of [
      '/cdn/a%5Cb', '/cdn/org/%5C..%5Csecret', '/cdn/a%00b', '/cdn/a%01b/release.json', '/cdn/%7F', '/cdn/a\\b',
      '/cdn/dxf/a%5Cb', '/cdn/dxf/org/app%5C..%5Crelease.json', '/cdn/dxf/a%00b', '/cdn/pat/a%01b/release.json', '/cdn/dxf/%7F', '/cdn/dxf/a\\b',
      '/cdn/dxf/org/app/release.json%0A', '/cdn/pat/a%1Bb',
    ]) {
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

  /** Sends raw bytes on a socket and returns everything the server answers before it closes. */
  const rawSocket = (bytes: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = net.connect(edge.port, '127.0.0.1', () => socket.write(bytes));
      let out = '';
      socket.setEncoding('utf8').on('data', (d: string) => (out += d));
      socket.on('close', () => resolve(out));
      socket.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? resolve(out) : reject(e)));
    });

  it('malformed HTTP and oversized headers answer in the envelope on the raw socket', async () => {
    const bad = await rawSocket('GET /srv/v1/health HTTP/1.1\r\nHost: x\r\nBroken Header\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1\.1 400 /);
    expect(bad).toMatch(/x-request-id: \S+/);
    expect(JSON.parse(bad.slice(bad.indexOf('\r\n\r\n') + 4))).toMatchObject({ status: 'error', error: 'bad-request' });
    const big = await rawSocket(`GET /srv/v1/health HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4))).toMatchObject({ status: 'error', error: 'headers-too-large' });
  });
});
