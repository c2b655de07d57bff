// Issue 14 (download keys, client API, traces) through the real binaries: `rockit-edge serve`
// (SQLite, temp data folder) and the `rockit` command. A keyed app's /cdn refuses a missing token
// and accepts the token from POST /client/v1/auth; `rockit trace upload` stores a trace.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compress } from 'zstd-napi';
import { listFiles, runRockit, startServer, waitFor, type ServerProcess, callJson } from './test-support/processes.js';

const ADMIN_TOKEN = 'e2e-faststart-admin-token-0123456789';
const ORG = 'acme';

let dir: string;
let server: ServerProcess;
let base: string;
let authToken: string;
let cliEnv: Record<string, string>;

const api = (method: string, p: string, body?: unknown, headers: Record<string, string> = { 'x-rockit-beauth-token': authToken }): Promise<any> =>
  callJson(base, method, p, body, headers);
const rockit = (argv: string[], stdin?: string) => runRockit(argv, cliEnv, stdin);

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-e2e-faststart-'));
  server = await startServer(path.join(dir, 'data'), {
    ROCKIT_ADMIN_TOKEN: ADMIN_TOKEN,
    ROCKIT_SCRYPT_COST: '1024',
    ROCKIT_WORKER_POLL_MS: '50',
    ROCKIT_TASK_MAX_ATTEMPTS: '1',
    ROCKIT_LOG_LEVEL: 'info',
  });
  base = server.address;
  cliEnv = { XDG_CONFIG_HOME: path.join(dir, 'cfg'), HOME: dir };
}, 60_000);

afterAll(async () => {
  await server?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('download keys and traces through rockit-edge serve and the rockit command', () => {
  let key: string;
  let keyId: string;
  let token: string;
  let gameFile: string;

  it('publishes an app, creates a download key with rockit keys create', async () => {
    const created = await api('POST', '/adm/v1/orgs', { name: ORG }, { 'x-rockit-admin-token': ADMIN_TOKEN });
    expect(created.httpStatus).toBe(201);
    const session = await api('POST', '/be/v1/login', { orgName: ORG, username: 'admin', password: created.admin.password }, {});
    authToken = (await api('POST', '/be/v1/auth', undefined, { 'x-rockit-besession-token': session.session.token })).auth.token;
    const login = await rockit(['login', '--server', base, '--org', ORG, '--user', 'admin', '--password-stdin'], created.admin.password + '\n');
    expect(login.exitCode, login.stderr).toBe(0);
    expect((await rockit(['apps', 'create', 'demo', '--label', 'Demo'])).exitCode).toBe(0);
    const series = path.join(dir, 'series');
    const gen = await rockit(['gamegen', 'build', '--seed', '3', '--size', '1MB', '--versions', '1', '--json', '--out', series]);
    expect(gen.exitCode, gen.stderr).toBe(0);
    const push = await rockit(['push', path.join(series, 'v1'), `${ORG}/demo`, '--name', '1.0']);
    expect(push.exitCode, push.stderr).toBe(0);
    await waitFor('demo at build 1', 60_000, async () => ((await api('GET', '/be/v1/apps/demo')).app?.iCurBuild === 1 ? true : undefined));
    const files = await listFiles(path.join(series, 'v1'));
    gameFile = files.find((f) => statSync(path.join(series, 'v1', f)).size >= 1000)!;
    expect(gameFile).toBeDefined();

    expect((await fetch(`${base}/cdn/dxf/${ORG}/demo/release.json`)).status).toBe(200);
    const k = await rockit(['keys', 'create', 'demo', '--label', 'launcher', '--json']);
    expect(k.exitCode, k.stderr).toBe(0);
    ({ key, id: keyId } = JSON.parse(k.stdout) as { key: string; id: string });
    expect(key).toMatch(/^rkdk_/);
    const list = await rockit(['keys', 'list', 'demo']);
    expect(list.stdout).toContain(keyId);
    expect(list.stdout).not.toContain(key);
  }, 120_000);

  it('the keyed app\'s /cdn refuses a missing or wrong token and accepts the token of /client/v1/auth', async () => {
    const rel = `${base}/cdn/dxf/${ORG}/demo/release.json`;
    const missing = await fetch(rel);
    expect(missing.status).toBe(403);
    expect(await missing.json()).toMatchObject({ status: 'error', error: 'forbidden' });
    const wrong = await api('POST', '/client/v1/auth', { orgName: ORG, appName: 'demo', key: 'rkdk_wrong' }, {});
    expect(wrong).toMatchObject({ httpStatus: 401, error: 'invalid-credentials' });
    const auth = await api('POST', '/client/v1/auth', { orgName: ORG, appName: 'demo', key }, {});
    expect(auth.httpStatus).toBe(200);
    expect(auth.release).toMatchObject({ orgName: ORG, appName: 'demo', buildId: 1 });
    token = auth.auth.token;
    const viaQuery = await fetch(`${rel}?token=${encodeURIComponent(token)}`);
    expect(viaQuery.status).toBe(200);
    expect(((await viaQuery.json()) as any).buildId).toBe(1);
    const image = await fetch(`${base}/cdn/${auth.release.image.path}${auth.release.image.manifest}`, { headers: { 'x-rockit-download-token': token, range: 'bytes=0-3' } });
    expect(image.status).toBe(206);
    const tampered = await fetch(rel, { headers: { 'x-rockit-download-token': token.slice(0, -1) + (token.endsWith('0') ? '1' : '0') } });
    expect(tampered.status).toBe(403);
  });

  it('rockit trace upload stores an NDJSON trace; the traces list shows it; deleting the key opens /cdn again', async () => {
    const file = path.join(dir, 'session.ndjson');
    await fs.writeFile(file, [
      JSON.stringify({ format: 'rockit-trace', version: 1, org: ORG, app: 'demo', build: 1, session: 'e2e', firstSession: true, start: 1_800_000_000 }),
      JSON.stringify({ t: 0, path: gameFile, offset: 0, length: 500 }),
      JSON.stringify({ t: 12, path: gameFile, offset: 500, length: 500 }),
    ].join('\n') + '\n');
    const up = await rockit(['trace', 'upload', file, '--server', base, '--org', ORG, '--app', 'demo', '--key', key, '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    expect(JSON.parse(up.stdout)).toEqual([expect.objectContaining({ records: 2, coverage: 1 })]);
    // The same trace wrapped in one zstd frame, sent with a token.
    const zst = path.join(dir, 'session.ndjson.zst');
    await fs.writeFile(zst, compress(await fs.readFile(file)));
    const upZ = await rockit(['trace', 'upload', zst, '--server', base, '--org', ORG, '--app', 'demo', '--token', token]);
    expect(upZ.exitCode, upZ.stderr).toBe(0);
    expect(upZ.stdout).toContain('2 reads, coverage 100.0%');
    const other = await rockit(['trace', 'upload', file, '--server', base, '--org', ORG, '--app', 'nope', '--key', key]);
    expect(other.exitCode).toBe(1);
    expect(other.stderr).toContain('invalid-credentials');
    const traces = await api('GET', '/be/v1/traces?appName=demo');
    expect(traces).toMatchObject({ httpStatus: 200, total: 2 });
    expect(traces.traces[0]).toMatchObject({ sessionId: 'e2e', records: 2, readBytes: 1000, coverage: 1 });

    expect((await rockit(['keys', 'delete', keyId])).exitCode).toBe(0);
    expect((await fetch(`${base}/cdn/dxf/${ORG}/demo/release.json`)).status).toBe(200);
  });
});
