import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/config.js';
import { createOrg, loginAdmin } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

const METRICS_TOKEN = 'metrics-token-0123456789abcdefghijkl';
const bearer = { authorization: `Bearer ${METRICS_TOKEN}` };

/** Parses the Prometheus text exposition format strictly enough to catch a malformed line: samples by series. */
function parseProm(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|Nan|nan|\+Inf|-Inf)( -?\d+)?$/;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = sample.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    samples.set(m[1]! + (m[2] ?? ''), Number(m[3]));
  }
  return samples;
}

describe('ROCKIT_METRICS_TOKEN', () => {
  it('is optional and must be 32 characters or more', () => {
    expect(loadConfig({ data: '/tmp/x' }, {}).metricsToken).toBeUndefined();
    expect(loadConfig({ data: '/tmp/x' }, { ROCKIT_METRICS_TOKEN: METRICS_TOKEN }).metricsToken).toBe(METRICS_TOKEN);
    expect(() => loadConfig({ data: '/tmp/x' }, { ROCKIT_METRICS_TOKEN: 'short' })).toThrow(/ROCKIT_METRICS_TOKEN/);
  });
});

describe.each(TEST_DIALECTS)('GET /metrics (%s)', (dialect) => {
  describe('off by default', () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await createTestServer({ dialect });
    });
    afterAll(() => t?.close());

    it('answers 404 in the envelope, with or without a token', async () => {
      for (const headers of [{}, bearer, t.admin]) {
        const r = await t.req('GET', '/metrics', { headers });
        expect(r.statusCode).toBe(404);
        expect(r.json()).toMatchObject({ status: 'error', error: 'not-found' });
      }
    });
  });

  describe('with ROCKIT_METRICS_TOKEN', () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await createTestServer({ dialect, env: { ROCKIT_METRICS_TOKEN: METRICS_TOKEN } });
    });
    afterAll(() => t?.close());

    const scrape = async (): Promise<Map<string, number>> => {
      const r = await t.req('GET', '/metrics', { headers: bearer });
      expect(r.statusCode, r.body).toBe(200);
      expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      return parseProm(r.body);
    };

    it('401 without the token, with a wrong one, with the admin token or an auth token', async () => {
      const org = await createOrg(t);
      const admin = await loginAdmin(t, org);
      const cases: Array<[Record<string, string>, string]> = [
        [{}, 'token-missing'],
        [{ authorization: 'Bearer wrong-token-0123456789abcdefghijklmn' }, 'token-invalid'],
        [{ authorization: `Basic ${METRICS_TOKEN}` }, 'token-invalid'],
        [{ authorization: `Bearer ${METRICS_TOKEN}x` }, 'token-invalid'],
        [{ authorization: `Bearer ${admin.authToken}` }, 'token-invalid'],
        [t.admin, 'token-missing'],
      ];
      for (const [headers, error] of cases) {
        const r = await t.req('GET', '/metrics', { headers });
        expect(r.statusCode, JSON.stringify(headers)).toBe(401);
        expect(r.json()).toMatchObject({ status: 'error', error });
        expect(r.body).not.toContain(METRICS_TOKEN);
      }
    });

    it('answers the Prometheus text format; the request histogram moves after a request, by route pattern and status', async () => {
      const org = await createOrg(t);
      const admin = await loginAdmin(t, org);
      const series = 'rockit_http_request_duration_seconds_count{method="GET",route="/be/v1/users/:username",status="200"}';
      const before = (await scrape()).get(series) ?? 0;
      const r = await t.req('GET', '/be/v1/users/admin', { headers: admin.headers });
      expect(r.statusCode).toBe(200);
      const after = await scrape();
      expect(after.get(series)).toBe(before + 1);
      // An unknown path is one series, whatever its text (no label from request text).
      await t.req('GET', '/no/such/path/12345');
      const text = (await t.req('GET', '/metrics', { headers: bearer })).body;
      expect(text).toContain('route="unmatched",status="404"');
      expect(text).not.toContain('12345');
      expect(after.has('rockit_process_cpu_seconds_total')).toBe(true);
    });

    it('task durations and queue depth move after a task runs', async () => {
      const succeeded = 'rockit_task_duration_seconds_count{type="hello",outcome="succeeded"}';
      const before = (await scrape()).get(succeeded) ?? 0;
      const h = await t.req('POST', '/adm/v1/hello', { headers: t.admin, body: { message: 'metrics' } });
      expect(h.statusCode, h.body).toBe(202);
      const name = h.json().task.name as string;
      let after = new Map<string, number>();
      for (let i = 0; i < 200; i++) {
        after = await scrape();
        if ((after.get(succeeded) ?? 0) > before) break;
        await new Promise((res) => setTimeout(res, 25));
      }
      expect(after.get(succeeded)).toBe(before + 1);
      const task = (await t.req('GET', `/adm/v1/tasks/${name}`, { headers: t.admin })).json().task;
      expect(task.status).toBe('succeeded');
      expect(after.get('rockit_tasks{type="hello",state="succeeded"}')).toBeGreaterThanOrEqual(1);
      for (const counter of ['rockit_upload_bytes_total', 'rockit_import_bytes_total', 'rockit_publish_bytes_total', 'rockit_patch_bytes_total']) {
        expect(after.has(counter), counter).toBe(true);
      }
    });

    it('counts the bytes of an upload PUT answered 200', async () => {
      const org = await createOrg(t);
      const admin = await loginAdmin(t, org);
      expect((await t.req('POST', '/be/v1/apps', { headers: admin.headers, body: { name: 'metricsapp', label: 'm' } })).statusCode).toBe(201);
      const b = await t.req('POST', '/be/v1/builds', { headers: admin.headers, body: { appName: 'metricsapp' } });
      expect(b.statusCode, b.body).toBe(202);
      const u = new URL(b.json().upload.url);
      const before = (await scrape()).get('rockit_upload_bytes_total') ?? 0;
      // Two zero blocks: an empty tar.
      const body = Buffer.alloc(1024);
      const put = await t.app.inject({ method: 'PUT', url: u.pathname + u.search, headers: { 'content-type': 'application/x-tar' }, payload: body });
      expect(put.statusCode, put.body).toBe(200);
      expect((await scrape()).get('rockit_upload_bytes_total')).toBe(before + 1024);
    });

    it('is not in the OpenAPI document', async () => {
      const r = await t.req('GET', '/openapi.json');
      expect(Object.keys(r.json().paths)).not.toContain('/metrics');
    });
  });
});
