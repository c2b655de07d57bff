import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostileOrg, rawRequest, startEdge, type EdgeProcess } from './support-h8a.js';

/** Issue 8 item 10: JSON in another charset than UTF-8 is refused (415), never read as UTF-8. */
describe('hostile: JSON charsets (issue 8 item 10)', () => {
  let edge: EdgeProcess;
  let org: { name: string; username: string; password: string };

  beforeAll(async () => {
    edge = await startEdge();
    org = await hostileOrg(edge, 'hostile_cs');
  }, 60_000);
  afterAll(() => edge?.stop());

  const body = () => JSON.stringify({ orgName: org.name, username: org.username, password: org.password });

  it('refuses charset=utf-16 and other charsets with 415 unsupported-media-type', async () => {
    for (const [charset, bytes] of [
      ['utf-16', Buffer.from('\ufeff' + body(), 'utf16le')],
      ['utf-16le', Buffer.from(body(), 'utf16le')],
      ['iso-8859-1', Buffer.from(body(), 'latin1')],
      ['"utf-16"', Buffer.from(body(), 'utf16le')],
    ] as const) {
      const r = await rawRequest(edge, 'POST', '/be/v1/login', { headers: { 'content-type': `application/json; charset=${charset}` }, body: bytes });
      expect(r.status, `${charset}: ${r.text}`).toBe(415);
      expect(r.json).toMatchObject({ status: 'error', error: 'unsupported-media-type' });
      expect(r.headers['x-request-id']).toBeTruthy();
    }
    // Same ASCII bytes under a lying charset: still refused, not read as UTF-8.
    const lying = await rawRequest(edge, 'POST', '/be/v1/login', { headers: { 'content-type': 'application/json; charset=utf-16' }, body: body() });
    expect(lying.status).toBe(415);
  });

  it('accepts UTF-8 (any spelling) and no charset', async () => {
    for (const ct of ['application/json', 'application/json; charset=utf-8', 'application/json;charset=UTF-8', 'application/json; charset="utf8"']) {
      const r = await rawRequest(edge, 'POST', '/be/v1/login', { headers: { 'content-type': ct }, body: body() });
      expect(r.status, `${ct}: ${r.text}`).toBe(200);
    }
  });
});
