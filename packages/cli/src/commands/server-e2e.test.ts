// End to end against the real server binary (packages/server/dist/bin.js, built by `tsc -b`),
// spoken to over HTTP only, as a publisher would: login (password and machine-user API key),
// authenticated reads through the session → auth-token exchange, logout revoking the session.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { register as registerLogin } from './login.js';
import { register as registerTasks } from './tasks.js';
import { credentialsPath, readCredentials } from '../api/credentials.js';
import { runCli } from '../api/test-support/stand-in-server.js';

const SERVER_BIN = fileURLToPath(new URL('../../../server/dist/bin.js', import.meta.url));
const ADMIN_TOKEN = 'e2e-admin-token-0123456789abcdefghij';

let dir: string;
let child: ChildProcess;
let server: string;
let adminPassword: string;

/** Starts `rockit-edge serve` on a free port and resolves with its address from the start-up log. */
function startServerProcess(dataDir: string): Promise<{ proc: ChildProcess; address: string }> {
  if (!existsSync(SERVER_BIN)) throw new Error(`${SERVER_BIN} is missing: run \`npx tsc -b\` first`);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ROCKIT_')) env[k] = v;
  Object.assign(env, { ROCKIT_ADMIN_TOKEN: ADMIN_TOKEN, ROCKIT_SCRYPT_COST: '1024', ROCKIT_LOG_LEVEL: 'info', ROCKIT_WORKER_POLL_MS: '50' });
  const proc = spawn(process.execPath, [SERVER_BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--data', dataDir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      for (const line of out.split('\n')) {
        try {
          const rec = JSON.parse(line) as { msg?: string; address?: string };
          if (rec.msg === 'rockit-edge listening' && rec.address) return resolve({ proc, address: rec.address });
        } catch {
          /* not a complete JSON line yet */
        }
      }
    });
    proc.on('exit', (code) => reject(new Error(`server exited with ${code}: ${err || out}`)));
  });
}

async function api(method: string, p: string, headers: Record<string, string>, body?: unknown): Promise<any> {
  const res = await fetch(server + p, {
    method,
    headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  return { httpStatus: res.status, ...((await res.json()) as object) };
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-cli-e2e-'));
  const started = await startServerProcess(path.join(dir, 'data'));
  child = started.proc;
  server = started.address;
  const created = await api('POST', '/adm/v1/orgs', { 'x-rockit-admin-token': ADMIN_TOKEN }, { name: 'acme' });
  expect(created.httpStatus).toBe(201);
  adminPassword = created.admin.password;
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('rockit against the real server', () => {
  it('logs in, reads through the auth-token exchange, and logs out (revoking the session)', async () => {
    const env = { XDG_CONFIG_HOME: path.join(dir, 'cfg-user'), HOME: dir };
    const run = (argv: string[], stdin?: string) => runCli([registerLogin, registerTasks], argv, { env, stdin });

    const bad = await run(['login', '--server', server, '--org', 'acme', '--user', 'admin', '--password-stdin'], 'wrong');
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('invalid-credentials (HTTP 401)');
    expect(bad.stderr).toMatch(/request id: \S+/);

    const login = await run(['login', '--server', server, '--org', 'acme', '--user', 'admin', '--password-stdin'], adminPassword + '\n');
    expect(login.exitCode, login.stderr).toBe(0);
    const stored = await readCredentials(credentialsPath(env));
    expect(stored).toMatchObject({ server, orgName: 'acme', username: 'admin' });
    expect(stored!.session!.expires).toBeGreaterThan(Date.now() / 1000);
    expect((await fs.stat(credentialsPath(env))).mode & 0o777).toBe(0o600);

    const tasks = await run(['tasks', '--json']);
    expect(tasks.exitCode, tasks.stderr + tasks.stdout).toBe(0);
    expect(JSON.parse(tasks.stdout)).toEqual([]);
    const table = await run(['tasks', '--status', 'failed']);
    expect(table.exitCode, table.stderr).toBe(0);
    expect(table.stdout).toBe('no tasks\n');

    const logout = await run(['logout']);
    expect(logout.exitCode, logout.stderr).toBe(0);
    const reuse = await api('POST', '/be/v1/auth', { 'x-rockit-besession-token': stored!.session!.token });
    expect(reuse.httpStatus).toBe(401);
    const after = await run(['tasks']);
    expect(after.exitCode).toBe(1);
    expect(after.stderr).toContain('not logged in');
  });

  it('works for a machine user with an API key (stored by login, or from the environment)', async () => {
    const session = await api('POST', '/be/v1/login', {}, { orgName: 'acme', username: 'admin', password: adminPassword });
    const auth = await api('POST', '/be/v1/auth', { 'x-rockit-besession-token': session.session.token });
    const machine = await api('POST', '/be/v1/users', { 'x-rockit-beauth-token': auth.auth.token }, { username: 'ci_bot', label: 'CI', roles: ['Administrators'] });
    expect(machine.httpStatus).toBe(201);
    const key: string = machine.apiKey.key;

    const env = { XDG_CONFIG_HOME: path.join(dir, 'cfg-machine'), HOME: dir };
    const run = (argv: string[], e: NodeJS.ProcessEnv = env) => runCli([registerLogin, registerTasks], argv, { env: e });
    const badKey = await run(['login', '--server', server, '--org', 'acme', '--user', 'ci_bot', '--api-key', key + 'x']);
    expect(badKey.exitCode).toBe(1);
    expect(badKey.stderr).toContain('(HTTP 401)');

    const login = await run(['login', '--server', server, '--org', 'acme', '--user', 'ci_bot', '--api-key', key]);
    expect(login.exitCode, login.stderr).toBe(0);
    expect((await run(['tasks', '--json'])).exitCode).toBe(0);

    const fromEnv = await run(['tasks', '--json'], {
      XDG_CONFIG_HOME: path.join(dir, 'cfg-none'),
      HOME: dir,
      ROCKIT_SERVER: server,
      ROCKIT_ORG: 'acme',
      ROCKIT_USER: 'ci_bot',
      ROCKIT_API_KEY: key,
    });
    expect(fromEnv.exitCode, fromEnv.stdout).toBe(0);
    expect(JSON.parse(fromEnv.stdout)).toEqual([]);
  });
});
