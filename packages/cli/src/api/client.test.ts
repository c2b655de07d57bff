import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { ApiClient, ApiError, NetworkError, formatWait, retryAfterSeconds, toEnvelope } from './client.js';
import { describeError } from './output.js';
import { fail, ok, startStandIn, type Handler, type StandIn } from './test-support/stand-in-server.js';

let standIn: StandIn | null = null;
afterEach(async () => {
  await standIn?.close();
  standIn = null;
});

async function serve(handler: Handler): Promise<StandIn> {
  standIn = await startStandIn(handler);
  return standIn;
}

const noSleep = async () => {};

describe('envelope mapping', () => {
  it('returns the success envelope', async () => {
    const s = await serve(() => ok({ app: { name: 'demo' } }));
    const client = new ApiClient({ server: s.url, credentials: { kind: 'none' } });
    const res = await client.get<{ status: 'success'; app: { name: string } }>('/be/v1/apps/demo');
    expect(res.app.name).toBe('demo');
  });

  it('maps an error envelope to ApiError with param, details and the x-request-id header', async () => {
    const s = await serve(() => fail(403, 'forbidden', 'apps.create is needed', { permission: 'apps.create' }));
    const client = new ApiClient({ server: s.url, credentials: { kind: 'none' } });
    const err = await client.post('/be/v1/apps', { name: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 403, error: 'forbidden', message: 'apps.create is needed', details: { permission: 'apps.create' } });
    expect((err as ApiError).requestId).toMatch(/^req-\d+$/);
  });

  it('prefers the requestId of the body (500 internal) and keeps param', async () => {
    const s = await serve(({ path }) =>
      path.endsWith('/apps') ? fail(500, 'internal', 'unexpected', { requestId: 'r-body' }) : fail(400, 'invalid-param', 'bad', { param: 'maxBuilds' }),
    );
    const client = new ApiClient({ server: s.url, credentials: { kind: 'none' } });
    await expect(client.post('/be/v1/apps', {})).rejects.toMatchObject({ status: 500, error: 'internal', requestId: 'r-body' });
    await expect(client.post('/be/v1/other', {})).rejects.toMatchObject({ status: 400, error: 'invalid-param', param: 'maxBuilds' });
  });

  it('turns a non-envelope answer into unexpected-response with the request id', async () => {
    const s = await serve(() => ({ status: 502, text: '<html><body>Bad Gateway</body></html>', headers: { 'x-request-id': 'proxy-1' } }));
    const client = new ApiClient({ server: s.url, credentials: { kind: 'none' } });
    const err = (await client.post('/be/v1/apps', {}).catch((e: unknown) => e)) as ApiError;
    expect(err).toMatchObject({ status: 502, error: 'unexpected-response', requestId: 'proxy-1' });
    expect(err.message).toContain('Bad Gateway');
    // A 200 that is not a success envelope is not a success.
    expect(() => toEnvelope(200, 'OK', '{"apps":[]}', null)).toThrow(ApiError);
  });

  it('keeps a base path prefix and encodes repeated query parameters', async () => {
    const s = await serve(() => ok({ total: 0, offset: 0, limit: 10, tasks: [] }));
    const client = new ApiClient({ server: `${s.url}/edge/`, credentials: { kind: 'none' } });
    await client.get('/be/v1/tasks', { 'order[]': ['-created', 'name'], appName: 'demo', status: undefined });
    expect(s.requests[0].path).toBe('/edge/be/v1/tasks');
    expect(s.requests[0].query.getAll('order[]')).toEqual(['-created', 'name']);
    expect(s.requests[0].query.get('appName')).toBe('demo');
    expect(s.requests[0].query.has('status')).toBe(false);
  });

  it('rejects server URLs that are not http(s)', () => {
    expect(() => new ApiClient({ server: 'ftp://x', credentials: { kind: 'none' } })).toThrow(/http or https/);
    expect(() => new ApiClient({ server: 'not a url', credentials: { kind: 'none' } })).toThrow(/invalid server URL/);
  });
});

describe('retries', () => {
  it('retries a GET on 503 with doubling delays, never a POST', async () => {
    let n = 0;
    const s = await serve(({ method }) => (method === 'GET' && ++n < 3 ? fail(503, 'unavailable', 'later') : method === 'POST' ? fail(503, 'unavailable', 'later') : ok({ pong: true })));
    const delays: number[] = [];
    const client = new ApiClient({ server: s.url, credentials: { kind: 'none' }, retryDelayMs: 10, sleep: async (ms) => void delays.push(ms) });
    await expect(client.get('/srv/v1/health')).resolves.toMatchObject({ pong: true });
    expect(delays).toEqual([10, 20]);
    await expect(client.post('/be/v1/apps', {})).rejects.toMatchObject({ status: 503 });
    expect(s.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
  });

  it('reports an unreachable server as NetworkError after the GET retries', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = net.createServer();
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const delays: number[] = [];
    const client = new ApiClient({ server: `http://127.0.0.1:${port}`, credentials: { kind: 'none' }, retries: 2, sleep: async (ms) => void delays.push(ms) });
    const err = await client.get<{ status: 'success'; token: string | null }>('/be/v1/apps').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect(delays).toHaveLength(2);
  });
});

describe('credentials', () => {
  /** A stand-in that issues auth tokens t1, t2, ... valid for 300 s from `serverNow` (seconds). */
  function authServer(state: { serverNow: number; issued: number; expireNext?: boolean }): Handler {
    return (req) => {
      const date = { date: new Date(state.serverNow * 1000).toUTCString() };
      if (req.path === '/be/v1/auth') {
        if (req.headers['x-rockit-besession-token'] !== 'sess') return fail(401, 'token-invalid', 'bad session');
        state.issued++;
        return { ...ok({ auth: { token: `t${state.issued}`, expires: state.serverNow + 300 } }), headers: date };
      }
      if (state.expireNext) {
        state.expireNext = false;
        return fail(401, 'token-expired', 'auth token expired');
      }
      return { ...ok({ token: req.headers['x-rockit-beauth-token'] ?? null }), headers: date };
    };
  }

  it('exchanges the session once, reuses the auth token, and refreshes it before it lapses', async () => {
    const state = { serverNow: 1_800_000_000, issued: 0 };
    const s = await serve(authServer(state));
    let localNow = state.serverNow * 1000;
    const client = new ApiClient({ server: s.url, credentials: { kind: 'session', sessionToken: 'sess' }, now: () => localNow });
    const [a, b] = await Promise.all([client.get<{ status: 'success'; token: string | null }>('/be/v1/apps'), client.get<{ status: 'success'; token: string | null }>('/be/v1/tasks')]);
    expect([a.token, b.token]).toEqual(['t1', 't1']);
    expect(state.issued).toBe(1); // concurrent callers shared one POST /be/v1/auth
    localNow += 200_000;
    expect((await client.get<{ status: 'success'; token: string | null }>('/be/v1/apps')).token).toBe('t1');
    localNow += 80_000; // 20 s left: inside the 30 s margin
    state.serverNow += 280;
    expect((await client.get<{ status: 'success'; token: string | null }>('/be/v1/apps')).token).toBe('t2');
    expect(s.requests.filter((r) => r.path !== '/be/v1/auth').every((r) => r.headers['x-rockit-besession-token'] === undefined)).toBe(true);
  });

  it('judges expiry on the server clock (a local clock one hour behind does not matter)', async () => {
    const state = { serverNow: 1_800_000_000, issued: 0 };
    const s = await serve(authServer(state));
    let localNow = (state.serverNow - 3600) * 1000;
    const client = new ApiClient({ server: s.url, credentials: { kind: 'session', sessionToken: 'sess' }, now: () => localNow });
    await client.get<{ status: 'success'; token: string | null }>('/be/v1/apps');
    localNow += 250_000;
    await client.get<{ status: 'success'; token: string | null }>('/be/v1/apps');
    expect(state.issued).toBe(1);
    localNow += 30_000;
    await client.get<{ status: 'success'; token: string | null }>('/be/v1/apps');
    expect(state.issued).toBe(2);
  });

  it('replays once with a new auth token after 401 token-expired', async () => {
    const state = { serverNow: 1_800_000_000, issued: 0, expireNext: false };
    const s = await serve(authServer(state));
    const client = new ApiClient({ server: s.url, credentials: { kind: 'session', sessionToken: 'sess' }, now: () => state.serverNow * 1000 });
    await client.get<{ status: 'success'; token: string | null }>('/be/v1/apps');
    state.expireNext = true;
    const res = await client.post<{ status: 'success'; token: string | null }>('/be/v1/apps', { name: 'demo', label: 'Demo' });
    expect(res.token).toBe('t2');
    const posts = s.requests.filter((r) => r.method === 'POST' && r.path === '/be/v1/apps');
    expect(posts.map((r) => r.json)).toEqual([{ name: 'demo', label: 'Demo' }, { name: 'demo', label: 'Demo' }]);
  });

  it('explains a dead session', async () => {
    const s = await serve(() => fail(401, 'token-expired', 'session expired'));
    const client = new ApiClient({ server: s.url, credentials: { kind: 'session', sessionToken: 'old' } });
    const err = (await client.get<{ status: 'success'; token: string | null }>('/be/v1/apps').catch((e: unknown) => e)) as ApiError;
    expect(err).toMatchObject({ status: 401, error: 'token-expired' });
    expect(err.hint).toContain('rockit login');
  });

  it('sends the API-key trio and no token', async () => {
    const s = await serve(() => ok({}));
    const client = new ApiClient({ server: s.url, credentials: { kind: 'apiKey', orgName: 'acme', username: 'ci', apiKey: 'k' } });
    await client.get<{ status: 'success'; token: string | null }>('/be/v1/apps');
    expect(s.requests[0].headers).toMatchObject({ 'x-rockit-orgname': 'acme', 'x-rockit-username': 'ci', 'x-rockit-api-key': 'k' });
    expect(s.requests[0].headers['x-rockit-beauth-token']).toBeUndefined();
    expect(s.requests.some((r) => r.path === '/be/v1/auth')).toBe(false);
  });
});

describe('listAll', () => {
  it('walks the pages until total', async () => {
    const all = Array.from({ length: 2500 }, (_, i) => ({ name: `a${i}` }));
    const s = await serve(({ query }) => {
      const offset = Number(query.get('offset'));
      const limit = Number(query.get('limit'));
      return ok({ total: all.length, offset, limit, apps: all.slice(offset, offset + limit) });
    });
    const client = new ApiClient({ server: s.url, credentials: { kind: 'none' }, sleep: noSleep });
    const items = await client.listAll<{ name: string }>('/be/v1/apps', 'apps');
    expect(items).toHaveLength(2500);
    expect(items[2499].name).toBe('a2499');
    expect(s.requests.map((r) => r.query.get('offset'))).toEqual(['0', '1000', '2000']);
  });
});

describe('429 rate-limited', () => {
  it('shows Retry-After as a wait time in the hint', async () => {
    const s = await serve(() => ({ ...fail(429, 'rate-limited', 'too many login attempts'), headers: { 'retry-after': '200' } }));
    const client = new ApiClient({ server: s.url, credentials: { kind: 'none' }, retries: 0, sleep: noSleep });
    const err = await client.post('/be/v1/login', { orgName: 'a', username: 'b', password: 'c' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(describeError(err)).toContain('hint: the server asks to wait 3 min 20 s before trying again (Retry-After)');
  });

  it('reads delta-seconds and HTTP dates; formats seconds, minutes and hours', () => {
    expect(retryAfterSeconds('45', 0)).toBe(45);
    expect(retryAfterSeconds(new Date(90_000).toUTCString(), 0)).toBe(90);
    expect(retryAfterSeconds('soon', 0)).toBeNull();
    expect(retryAfterSeconds(null, 0)).toBeNull();
    expect([formatWait(5), formatWait(60), formatWait(125), formatWait(7500)]).toEqual(['5 s', '1 min', '2 min 5 s', '2 h 5 min']);
  });
});
