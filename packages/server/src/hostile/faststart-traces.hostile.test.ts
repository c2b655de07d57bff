// Issue 14, through the real binary: hostile trace uploads, lying traces, key guessing, and /cdn
// paths that try to leave the app a token is for. Every refusal is the error envelope; nothing is
// stored; the server stays healthy.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTrace, type Trace } from '@rockit/engine';
import { makeTar, pseudoRandomBytes } from '../pipeline/test-support/fixtures.js';
import { call, DIALECTS, orgWithPublishedApp, startEdge, type Edge } from './support-h14s1.js';

const MAX_TRACE = 8192;

const trace = (org: string, app: string, records: Array<[number, string, number, number]>): Trace => ({
  header: { orgName: org, appName: app, buildId: 0, dxfName: '', sessionId: 'h', firstSession: false, startTimeUnixSeconds: 1_800_000_000 },
  records: records.map(([tMs, path, offsetBytes, lengthBytes]) => ({ tMs, path, offsetBytes, lengthBytes })),
});

/** A GET with the path sent exactly as given (fetch would normalise `..`). */
function rawGet(base: string, rawPath: string, headers: Record<string, string>): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: rawPath, method: 'GET', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe.each(DIALECTS)('FastStart hostile inputs through rockit-edge serve (%s)', (dialect) => {
  let edge: Edge;
  let userA: Record<string, string>;
  let userB: Record<string, string>;
  let tokenA: string;
  let keyA: string;

  beforeAll(async () => {
    edge = await startEdge(dialect, { ROCKIT_MAX_TRACE_BYTES: String(MAX_TRACE), ROCKIT_LOGIN_MAX_FAILURES_PER_ADDRESS: '30' });
    const tar = await makeTar([{ name: 'game/', type: 'directory' }, { name: 'game/data.bin', content: pseudoRandomBytes(20_000, 3) }]);
    userA = await orgWithPublishedApp(edge, 'h14_org_a', 'game', tar);
    userB = await orgWithPublishedApp(edge, 'h14_org_b', 'game', tar);
    const kA = await call(edge.base, 'POST', '/be/v1/keys', userA, { appName: 'game' });
    expect(kA.status).toBe(201);
    keyA = kA.json.key.key;
    expect((await call(edge.base, 'POST', '/be/v1/keys', userB, { appName: 'game' })).status).toBe(201);
    const auth = await call(edge.base, 'POST', '/client/v1/auth', {}, { orgName: 'h14_org_a', appName: 'game', key: keyA });
    expect(auth.status).toBe(200);
    tokenA = auth.json.auth.token;
  }, 240_000);
  afterAll(async () => {
    await edge?.dispose();
  });

  const upload = (body: Uint8Array | string, contentType = 'application/octet-stream', headers: Record<string, string> = { 'x-rockit-download-token': tokenA }) =>
    call(edge.base, 'POST', '/client/v1/traces', { 'content-type': contentType, ...headers }, body);
  const stored = async (user: Record<string, string>): Promise<number> => (await call(edge.base, 'GET', '/be/v1/traces?appName=game', user)).json.total;

  it('random and mutated trace bodies: 400 envelopes, never 500; only an unchanged body is stored', async () => {
    const good = encodeTrace(trace('h14_org_a', 'game', [[0, 'game/data.bin', 0, 100], [3, 'game/data.bin', 100, 100]]), { compress: false });
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) % 256);
    const bodies: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) {
      const b = Uint8Array.from(good);
      const flips = 1 + (i % 4);
      for (let f = 0; f < flips; f++) b[(rnd() * 97 + i) % b.length] = rnd();
      bodies.push(i % 5 === 0 ? b.subarray(0, (i * 7) % b.length) : b);
    }
    for (let i = 0; i < 10; i++) bodies.push(Uint8Array.from({ length: 10 + i * 50 }, rnd));
    let accepted = 0;
    for (const b of bodies) {
      const r = await upload(b);
      expect([202, 400], JSON.stringify(r.json)).toContain(r.status);
      if (r.status === 400) expect(r.json).toMatchObject({ status: 'error', error: expect.stringMatching(/^(invalid-param|missing-param)$/) });
      // Only a "mutation" that wrote the bytes already there (the checksum covers everything else) goes in.
      if (r.status === 202) {
        expect(Buffer.from(b).equals(Buffer.from(good))).toBe(true);
        accepted++;
      }
    }
    expect(await stored(userA)).toBe(accepted);
    expect((await call(edge.base, 'GET', '/srv/v1/health')).status).toBe(200);
  });

  it('lying traces: another org\'s app, paths and offsets outside the build, oversized bodies, NDJSON lies', async () => {
    const [beforeA, beforeB] = [await stored(userA), await stored(userB)];
    const other = await upload(encodeTrace(trace('h14_org_b', 'game', [[0, 'game/data.bin', 0, 100]])));
    expect(other.status).toBe(403);
    expect(other.json).toMatchObject({ status: 'error', error: 'forbidden' });
    const outside = await upload(encodeTrace(trace('h14_org_a', 'game', [[0, '../../etc/passwd'.replace(/\.\.\//g, ''), 0, 10], [1, 'game/data.bin', 1 << 30, 10]])));
    expect(outside).toMatchObject({ status: 400, json: { error: 'invalid-param', param: 'records' } });
    const big = await upload(new Uint8Array(MAX_TRACE + 1));
    expect(big).toMatchObject({ status: 413, json: { status: 'error', error: 'payload-too-large' } });
    const header = JSON.stringify({ format: 'rockit-trace', version: 1, org: 'h14_org_a', app: 'game', session: 's', firstSession: true, start: 1 });
    for (const line of [
      { t: 1, path: 'game/data.bin', offset: -5, length: 10 },
      { t: 1, path: 'game/data.bin', offset: 0, length: 0 },
      { t: 1, path: '/abs', offset: 0, length: 1 },
      { t: 1.5, path: 'game/data.bin', offset: 0, length: 1 },
      { t: 1, path: 'game/data.bin', offset: 2 ** 53, length: 1 },
    ]) {
      const r = await upload(`${header}\n${JSON.stringify(line)}\n`, 'application/x-ndjson');
      expect(r.status, JSON.stringify(line)).toBe(400);
      expect(r.json).toMatchObject({ status: 'error', error: 'invalid-param', param: 'body' });
    }
    const spoof = JSON.stringify({ format: 'rockit-trace', version: 1, org: 'h14_org_b', app: 'game', session: 's', firstSession: true, start: 1 });
    expect((await upload(`${spoof}\n${JSON.stringify({ t: 0, path: 'game/data.bin', offset: 0, length: 1 })}\n`, 'application/x-ndjson')).status).toBe(403);
    expect(await stored(userA)).toBe(beforeA);
    expect(await stored(userB)).toBe(beforeB);
  });

  it('/cdn: a token cannot leave its app by dot segments or encoding; the other org\'s keyed app stays closed', async () => {
    const h = { 'x-rockit-download-token': tokenA };
    expect(await rawGet(edge.base, '/cdn/dxf/h14_org_a/game/release.json', h)).toBe(200);
    expect(await rawGet(edge.base, '/cdn/dxf/h14_org_b/game/release.json', h)).toBe(403);
    for (const p of [
      '/cdn/dxf/h14_org_a/game/../../h14_org_b/game/release.json',
      '/cdn/dxf/h14_org_a/game/%2e%2e/%2e%2e/h14_org_b/game/release.json',
      '/cdn/dxf/h14_org_a/game/..%2f..%2fh14_org_b/game/release.json',
      '/cdn/dxf/h14_org_a/game//../../h14_org_b/game/release.json',
    ]) {
      const status = await rawGet(edge.base, p, h);
      expect([403, 404], p).toContain(status);
    }
    // The token in the query is redacted from the log.
    await rawGet(edge.base, `/cdn/dxf/h14_org_a/game/release.json?token=${encodeURIComponent(tokenA)}`, {});
    expect(edge.log()).not.toContain(tokenA.slice(-64));
  });

  it('key guessing is throttled per address (429 with Retry-After), with one identical answer before that', async () => {
    const answers = new Set<string>();
    let limited = 0;
    for (let i = 0; i < 35; i++) {
      const r = await call(edge.base, 'POST', '/client/v1/auth', {}, { orgName: i % 2 ? 'h14_org_a' : 'no_org', appName: 'game', key: `rkdk_guess_${i}` });
      if (r.status === 429) {
        limited++;
        expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
      } else {
        expect(r.status).toBe(401);
        answers.add(JSON.stringify({ error: r.json.error, message: r.json.message }));
      }
    }
    expect(answers.size).toBe(1);
    expect(limited).toBeGreaterThan(0);
    // The right key from the same address waits too; the trace intake with a guessed key as well.
    expect((await call(edge.base, 'POST', '/client/v1/auth', {}, { orgName: 'h14_org_a', appName: 'game', key: keyA })).status).toBe(429);
    expect((await upload('x', 'application/octet-stream', { 'x-rockit-download-key': 'rkdk_guess' })).status).toBe(429);
  });
});
