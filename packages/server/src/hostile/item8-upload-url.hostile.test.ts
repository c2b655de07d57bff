import { afterAll, describe, expect, it } from 'vitest';
import { hostileLogin, hostileOrg, rawRequest, startEdge, type EdgeProcess } from './support-h8a.js';

/** Issue 8 item 8: the upload URL (with its one-time token) never follows the request's Host header. */
describe('hostile: upload URL from the configured public URL (issue 8 item 8)', () => {
  const started: EdgeProcess[] = [];
  afterAll(async () => {
    for (const e of started) await e.stop();
  });

  async function uploadUrl(edge: EdgeProcess, host: string): Promise<string> {
    const org = await hostileOrg(edge, `hostile_up${started.length}`);
    const h = await hostileLogin(edge, org.name, org.username, org.password);
    expect((await rawRequest(edge, 'POST', '/be/v1/apps', { headers: h, body: { name: 'game', label: 'Game' } })).status).toBe(201);
    const r = await rawRequest(edge, 'POST', '/be/v1/builds', { headers: { ...h, host }, body: { appName: 'game' } });
    expect(r.status, r.text).toBe(202);
    return r.json.upload.url as string;
  }

  it('uses ROCKIT_PUBLIC_URL, whatever the Host header says', async () => {
    const edge = await startEdge({ ROCKIT_PUBLIC_URL: 'https://edge.example.com/rockit/' });
    started.push(edge);
    const url = await uploadUrl(edge, 'attacker.example:666');
    expect(url).toMatch(/^https:\/\/edge\.example\.com\/rockit\/be\/v1\/uploads\/[^/?]+\?token=/);
  }, 60_000);

  it('falls back to the listen address without ROCKIT_PUBLIC_URL', async () => {
    const edge = await startEdge();
    started.push(edge);
    const url = await uploadUrl(edge, 'attacker.example');
    expect(url.startsWith(`${edge.address}/be/v1/uploads/`)).toBe(true);
  }, 60_000);
});
