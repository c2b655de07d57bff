import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { register } from './login.js';
import { credentialsPath, readCredentials, writeCredentials } from '../api/credentials.js';
import { fail, ok, runCli, startStandIn, type StandIn } from '../api/test-support/stand-in-server.js';

let dir: string;
let standIn: StandIn;
let env: NodeJS.ProcessEnv;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-login-'));
  env = { XDG_CONFIG_HOME: path.join(dir, 'cfg'), HOME: dir };
  standIn = await startStandIn((req) => {
    if (req.path === '/be/v1/login') {
      const body = req.json as { orgName: string; username: string; password: string };
      if (body.password !== 'secret pw') return fail(401, 'invalid-credentials', 'login failed');
      return ok({ session: { token: 'sess-new', expires: 1_900_000_000 }, user: { username: body.username }, permissions: { apps: 15 } });
    }
    if (req.path === '/be/v1/logout') return ok({});
    if (req.path === '/be/v1/users/ci') {
      if (req.headers['x-rockit-api-key'] === 'good') return ok({ user: { username: 'ci', type: 'machine' } });
      if (req.headers['x-rockit-api-key'] === 'noread') return fail(403, 'forbidden', 'no', { permission: 'users.read' });
      return fail(401, 'token-invalid', 'bad key');
    }
    return fail(404, 'not-found', 'no route');
  });
});
afterEach(async () => {
  await standIn.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const run = (argv: string[], stdin?: string) => runCli([register], argv, { env, stdin });

describe('rockit login', () => {
  it('logs in with --password-stdin and stores the session with mode 0600', async () => {
    const r = await run(['login', '--server', standIn.url, '--org', 'acme', '--user', 'alice', '--password-stdin'], 'secret pw\n');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('logged in to');
    expect(standIn.requests[0].json).toEqual({ orgName: 'acme', username: 'alice', password: 'secret pw' });
    const file = credentialsPath(env);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect(await readCredentials(file)).toMatchObject({ server: standIn.url, orgName: 'acme', username: 'alice', session: { token: 'sess-new', expires: 1_900_000_000 } });
  });

  it('takes server, org and user from the environment', async () => {
    env = { ...env, ROCKIT_SERVER: standIn.url, ROCKIT_ORG: 'acme', ROCKIT_USER: 'bob' };
    const r = await run(['login', '--password-stdin', '--json'], 'secret pw');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'success', username: 'bob', kind: 'session', permissions: { apps: 15 } });
  });

  it('fails on wrong credentials with the API error name, storing nothing', async () => {
    const r = await run(['login', '--server', standIn.url, '--org', 'acme', '--user', 'alice', '--password-stdin'], 'wrong');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('invalid-credentials');
    expect(r.stderr).toMatch(/request id: req-\d+/);
    await expect(fs.stat(credentialsPath(env))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('needs a terminal or --password-stdin, and names missing options', async () => {
    const r = await run(['login', '--server', standIn.url, '--org', 'acme', '--user', 'alice']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('--password-stdin');
    const r2 = await run(['login', '--server', standIn.url, '--password-stdin'], 'x');
    expect(r2.exitCode).toBe(1);
    expect(r2.stderr).toContain('login needs --org, --user');
  });

  it('stores a machine user API key after the server accepted it (403 counts as accepted)', async () => {
    const base = ['login', '--server', standIn.url, '--org', 'acme', '--user', 'ci'];
    expect((await run([...base, '--api-key', 'good'])).exitCode).toBe(0);
    expect((await readCredentials(credentialsPath(env)))?.apiKey).toBe('good');
    expect((await run([...base, '--api-key-stdin'], 'noread\n')).exitCode).toBe(0);
    expect((await readCredentials(credentialsPath(env)))?.apiKey).toBe('noread');
    const bad = await run([...base, '--api-key', 'bad']);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('token-invalid');
    expect((await readCredentials(credentialsPath(env)))?.apiKey).toBe('noread');
  });
});

describe('rockit logout', () => {
  it('revokes the session on the server and removes the file', async () => {
    await writeCredentials(credentialsPath(env), { version: 1, server: standIn.url, orgName: 'acme', username: 'alice', session: { token: 'sess-x', expires: 1_900_000_000 }, saved: 0 });
    const r = await run(['logout']);
    expect(r.exitCode, r.stderr).toBe(0);
    const logout = standIn.requests.find((q) => q.path === '/be/v1/logout');
    expect(logout?.headers['x-rockit-besession-token']).toBe('sess-x');
    expect(logout?.headers['x-rockit-beauth-token']).toBeUndefined();
    await expect(fs.stat(credentialsPath(env))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await run(['logout'])).stdout).toBe('not logged in\n');
  });

  it('removes the file even when the server is gone', async () => {
    await writeCredentials(credentialsPath(env), { version: 1, server: 'http://127.0.0.1:1', orgName: 'acme', username: 'alice', session: { token: 's', expires: 1 }, saved: 0 });
    const r = await run(['logout']);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain('could not revoke');
    await expect(fs.stat(credentialsPath(env))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
