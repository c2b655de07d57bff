/**
 * The real server binary (packages/server/dist/bin.js, built by `npx tsc -b`) for the hostile tests of
 * issue 14 (download keys, download tokens, trace intake): a free loopback port, a temp data folder,
 * SQLite or a fresh PostgreSQL schema; spoken to over HTTP only.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

// A test helper compiled with the package (never loaded by the server): it reads the runner's environment once, here.
// eslint-disable-next-line no-restricted-properties -- test helper, see above
const runnerEnv: NodeJS.ProcessEnv = process.env;
export type Dialect = 'sqlite' | 'pg';
export const DIALECTS: Dialect[] = (runnerEnv.ROCKIT_TEST_DIALECTS ?? 'sqlite,pg').split(',').map((s) => s.trim()).filter((s): s is Dialect => s === 'sqlite' || s === 'pg');
const PG_URL = runnerEnv.ROCKIT_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const BIN = fileURLToPath(new URL('../../dist/bin.js', import.meta.url));
const ADMIN = 'h14s1-hostile-admin-token-0123456789';

export interface Edge {
  base: string;
  admin: Record<string, string>;
  log(): string;
  dispose(): Promise<void>;
}

/** Starts `rockit-edge serve` and resolves once it logs its address. */
export async function startEdge(dialect: Dialect, extraEnv: Record<string, string> = {}): Promise<Edge> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npx tsc -b\` first`);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'rockit-h14s1-'));
  const schema = `h14_${randomBytes(6).toString('hex')}`;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(runnerEnv)) if (!k.startsWith('ROCKIT_')) env[k] = v;
  Object.assign(env, {
    ROCKIT_ADMIN_TOKEN: ADMIN, ROCKIT_SCRYPT_COST: '1024', ROCKIT_WORKER_POLL_MS: '50', ROCKIT_LOG_LEVEL: 'info',
    ROCKIT_INSTALLATION_KEY: '22'.repeat(32),
    ...(dialect === 'pg' ? { ROCKIT_DATABASE_URL: PG_URL, ROCKIT_DATABASE_SCHEMA: schema } : {}),
    ...extraEnv,
  });
  const proc = spawn(process.execPath, [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--data', dataDir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  proc.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not come up: ${out}`));
    }, 60_000);
    proc.stdout.on('data', () => {
      const m = /"msg":"rockit-edge listening"[^\n]*"address":"([^"]+)"|"address":"([^"]+)"[^\n]*"msg":"rockit-edge listening"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] ?? m[2]);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${out}`));
    });
  });
  return {
    base,
    admin: { 'x-rockit-admin-token': ADMIN },
    log: () => out,
    async dispose() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
      if (dialect === 'pg') {
        const c = new pg.Client({ connectionString: PG_URL });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => c.end());
      }
    },
  };
}

/** A request with a JSON body (or raw bytes); returns the status, headers and parsed body. */
export async function call(
  base: string, method: string, url: string, headers: Record<string, string> = {}, body?: unknown,
): Promise<{ status: number; json: any; headers: Headers }> {
  const raw = body instanceof Uint8Array || typeof body === 'string';
  const res = await fetch(new URL(url, base), {
    method,
    headers: { ...(body !== undefined && !raw ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: raw ? (body as NonNullable<RequestInit['body']>) : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

/** An org with an app at build 1 (uploaded `tar`, published); returns the administrator's auth headers. */
export async function orgWithPublishedApp(edge: Edge, orgName: string, appName: string, tar: Uint8Array): Promise<Record<string, string>> {
  const created = await call(edge.base, 'POST', '/adm/v1/orgs', edge.admin, { name: orgName });
  if (created.status !== 201) throw new Error(`create org: ${JSON.stringify(created.json)}`);
  const login = await call(edge.base, 'POST', '/be/v1/login', {}, { orgName, username: created.json.admin.username, password: created.json.admin.password });
  const auth = await call(edge.base, 'POST', '/be/v1/auth', { 'x-rockit-besession-token': login.json.session.token });
  const user = { 'x-rockit-beauth-token': auth.json.auth.token as string };
  if ((await call(edge.base, 'POST', '/be/v1/apps', user, { name: appName, label: appName })).status !== 201) throw new Error('create app');
  const b = await call(edge.base, 'POST', '/be/v1/builds', user, { appName });
  const put = await fetch(b.json.upload.url as string, { method: 'PUT', body: tar, headers: { 'content-type': 'application/x-tar' } });
  if (put.status !== 200) throw new Error(`upload: ${put.status}`);
  const deadline = Date.now() + 120_000;
  while ((await call(edge.base, 'GET', `/be/v1/apps/${appName}`, user)).json.app?.iCurBuild !== 1) {
    if (Date.now() > deadline) throw new Error(`not published: ${edge.log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return user;
}
