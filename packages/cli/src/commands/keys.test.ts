import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { register as registerKeys } from './keys.js';
import { fail, loggedInEnv, ok, runCli, startStandIn, withAuth, type Handler, type StandIn } from '../api/test-support/stand-in-server.js';

let dir: string;
let standIn: StandIn | null = null;
let env: NodeJS.ProcessEnv;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-keys-'));
});
afterEach(async () => {
  await standIn?.close();
  standIn = null;
  await fs.rm(dir, { recursive: true, force: true });
});

async function serve(handler: Handler, auth = true): Promise<StandIn> {
  standIn = await startStandIn(auth ? withAuth(handler) : handler);
  env = await loggedInEnv(standIn.url, dir);
  return standIn;
}
const run = (argv: string[]) => runCli([registerKeys], argv, { env });
const KEY = { id: 'dk_01J0000000000000000000000A', appName: 'demo', label: 'l', created: 1_800_000_000, lastUsed: null };

describe('rockit keys', () => {
  it('creates (secret printed once), lists and deletes with the documented requests', async () => {
    const s = await serve((req) => {
      if (req.method === 'POST') return ok({ key: { ...KEY, key: 'rkdk_secret' } }, 201);
      if (req.method === 'GET') return ok({ total: 1, offset: 0, limit: 1000, keys: [KEY] });
      return ok({});
    });
    const c = await run(['keys', 'create', 'demo', '--label', 'launcher']);
    expect(c.exitCode, c.stderr).toBe(0);
    expect(c.stdout).toContain('rkdk_secret');
    expect(s.requests.find((q) => q.method === 'POST' && q.path === '/be/v1/keys')?.json).toEqual({ appName: 'demo', label: 'launcher' });
    const l = await run(['keys', 'list', 'demo']);
    expect(l.exitCode, l.stderr).toBe(0);
    expect(l.stdout).toContain(KEY.id);
    expect(l.stdout).not.toContain('rkdk_secret');
    expect(s.requests.find((q) => q.method === 'GET' && q.path === '/be/v1/keys')?.query.get('appName')).toBe('demo');
    const d = await run(['keys', 'delete', KEY.id]);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(s.requests.some((q) => q.method === 'DELETE' && q.path === `/be/v1/keys/${KEY.id}`)).toBe(true);
  });

  it('shows a refusal with its error name', async () => {
    await serve(() => fail(403, 'forbidden', 'permission keys.create is required', { permission: 'keys.create' }));
    const r = await run(['keys', 'create', 'demo']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('forbidden (HTTP 403)');
  });
});

describe('rockit trace upload', () => {
  it('sends each file as it is: binary as octet-stream, NDJSON as x-ndjson, with the key or the token', async () => {
    const s = await serve((req) => (req.path === '/client/v1/auth' ? ok({ auth: { token: 'st=1~exp=9~acl=/a~hmac=11', expires: 9 }, release: null }) : ok({ trace: { id: 'tr_1', records: 2, coverage: 0.5 } }, 202)), false);
    const bin = path.join(dir, 'a.rktr');
    const nd = path.join(dir, 'b.ndjson');
    await fs.writeFile(bin, Buffer.from([0x52, 0x4b, 0x54, 0x52, 1, 2, 3]));
    await fs.writeFile(nd, '{"format":"rockit-trace"}\n');
    const r = await run(['trace', 'upload', bin, nd, '--server', s.url, '--org', 'acme', '--app', 'demo', '--key', 'rkdk_k']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('coverage 50.0%');
    const posts = s.requests.filter((q) => q.path === '/client/v1/traces');
    expect(posts.map((q) => q.headers['content-type'])).toEqual(['application/octet-stream', 'application/x-ndjson']);
    expect(posts[0].body.equals(await fs.readFile(bin))).toBe(true);
    expect(s.requests[0]).toMatchObject({ method: 'POST', path: '/client/v1/auth', json: { orgName: 'acme', appName: 'demo', key: 'rkdk_k' } });
    expect(posts.map((q) => q.headers['x-rockit-download-token'])).toEqual(['st=1~exp=9~acl=/a~hmac=11', 'st=1~exp=9~acl=/a~hmac=11']);
    const t = await run(['trace', 'upload', bin, '--server', s.url, '--org', 'acme', '--app', 'demo', '--token', 'st=1~exp=2~acl=/x~hmac=00']);
    expect(t.exitCode, t.stderr).toBe(0);
    expect(s.requests.at(-1)?.headers['x-rockit-download-token']).toBe('st=1~exp=2~acl=/x~hmac=00');
  });

  it('needs exactly one credential and reports the server refusal', async () => {
    const s = await serve(() => fail(400, 'invalid-param', 'the trace is refused: trace checksum does not match', { param: 'body', reason: 'trace-checksum-mismatch' }), false);
    const f = path.join(dir, 'a.rktr');
    await fs.writeFile(f, 'RKTR');
    const none = await run(['trace', 'upload', f, '--server', s.url, '--org', 'acme', '--app', 'demo']);
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toContain('exactly one of --key');
    const both = await run(['trace', 'upload', f, '--server', s.url, '--org', 'acme', '--app', 'demo', '--key', 'k', '--token', 't']);
    expect(both.exitCode).toBe(1);
    expect(s.requests).toHaveLength(0);
    const refused = await run(['trace', 'upload', f, '--server', s.url, '--org', 'acme', '--app', 'demo', '--token', 't']);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('invalid-param (HTTP 400), param: body');
  });
});
