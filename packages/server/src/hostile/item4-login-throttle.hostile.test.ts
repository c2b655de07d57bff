import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EDGE_BIN, childEnv, HOSTILE_ADMIN_TOKEN, adminHeaders, hostileOrg, rawRequest, startEdge, type EdgeProcess } from './support-h8a.js';

/**
 * Issue 8 item 4: the login throttle counts before the password check (no race), locks out an
 * (account, address) pair rather than the account, and guessing admin tokens or API keys is
 * throttled per address too. Addresses come from X-Forwarded-For (ROCKIT_TRUST_PROXY).
 */
describe('hostile: login and credential throttling (issue 8 item 4)', () => {
  let edge: EdgeProcess;
  let org: { name: string; username: string; password: string };
  const from = (address: string) => ({ 'x-forwarded-for': address });

  beforeAll(async () => {
    edge = await startEdge({ ROCKIT_TRUST_PROXY: 'true', ROCKIT_AUTH_MAX_FAILURES_PER_ADDRESS: '5' });
    org = await hostileOrg(edge, 'hostile_thr');
  }, 60_000);
  afterAll(() => edge?.stop());

  it('40 parallel wrong passwords get at most 5 answers of 401; the real user still logs in from elsewhere', async () => {
    const attempts = await Promise.all(
      Array.from({ length: 40 }, () =>
        rawRequest(edge, 'POST', '/be/v1/login', { headers: from('203.0.113.7'), body: { orgName: org.name, username: org.username, password: 'wrong-password' } }),
      ),
    );
    const statuses = attempts.map((a) => a.status);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(5);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(35);
    const limited = attempts.find((a) => a.status === 429)!;
    expect(limited.json).toMatchObject({ status: 'error', error: 'rate-limited' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // The right password from the attacker's address is refused too (no oracle) ...
    const attacker = await rawRequest(edge, 'POST', '/be/v1/login', { headers: from('203.0.113.7'), body: { orgName: org.name, username: org.username, password: org.password } });
    expect(attacker.status).toBe(429);
    // ... but the real user, from their own address, is not locked out.
    const real = await rawRequest(edge, 'POST', '/be/v1/login', { headers: from('198.51.100.20'), body: { orgName: org.name, username: org.username, password: org.password } });
    expect(real.status, real.text).toBe(200);
  });

  it('admin-token guessing is throttled per address (429 + Retry-After); other addresses keep working', async () => {
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 8; i++) {
      last = await rawRequest(edge, 'POST', '/adm/v1/ping', { headers: { ...from('203.0.113.8'), 'x-rockit-admin-token': `guess-${i}-${'x'.repeat(32)}` } });
      statuses.push(last.status);
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5)).toEqual([429, 429, 429]);
    expect(last!.json).toMatchObject({ status: 'error', error: 'rate-limited' });
    expect(Number(last!.headers['retry-after'])).toBeGreaterThan(0);
    // Even the right token is refused from the blocked address, accepted from another.
    expect((await rawRequest(edge, 'POST', '/adm/v1/ping', { headers: { ...from('203.0.113.8'), ...adminHeaders } })).status).toBe(429);
    expect((await rawRequest(edge, 'POST', '/adm/v1/ping', { headers: { ...from('198.51.100.21'), ...adminHeaders } })).status).toBe(200);
  });

  it('API-key guessing is throttled per address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await rawRequest(edge, 'GET', '/be/v1/apps', {
        headers: { ...from('203.0.113.9'), 'x-rockit-orgname': org.name, 'x-rockit-username': 'ci', 'x-rockit-api-key': `rkk_guess${i}` },
      });
      statuses.push(r.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
  });

  it('refuses to start with an admin token shorter than 32 characters', () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'rockit-hostile-'));
    try {
      const env = childEnv({ ROCKIT_ADMIN_TOKEN: 'short-admin-token-0123' });
      const r = spawnSync(process.execPath, [EDGE_BIN, 'migrate', '--data', dataDir], { env, encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/ROCKIT_ADMIN_TOKEN must be at least 32 characters/);
      expect(HOSTILE_ADMIN_TOKEN.length).toBeGreaterThanOrEqual(32);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
