/**
 * The real server binary (packages/server/dist/bin.js) for hostile tests of items 2, 3 and 6:
 * started on a free loopback port in its own data folder, spoken to over real HTTP only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const SERVER_BIN = fileURLToPath(new URL('../../dist/bin.js', import.meta.url));
export const ADMIN_TOKEN = 'hostile-admin-token-0123456789abcdef';
// eslint-disable-next-line no-restricted-properties -- test helper: the same override as test-support/test-server.ts
export const PG_URL = process.env.ROCKIT_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface HttpAnswer {
  status: number;
  body: any;
}

export interface RealServer {
  baseUrl: string;
  dataDir: string;
  proc: ChildProcess;
  log(): string;
  req(method: string, url: string, opts?: { headers?: Record<string, string>; body?: unknown }): Promise<HttpAnswer>;
  admin: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Starts `rockit-edge serve` with only the given ROCKIT_* variables (plus an admin token, a cheap
 * scrypt cost and a fast worker poll). `pg: true` puts it on a fresh PostgreSQL schema, dropped on stop.
 */
export async function startRealServer(opts: { env?: Record<string, string>; pg?: boolean; dataDir?: string } = {}): Promise<RealServer> {
  if (!existsSync(SERVER_BIN)) throw new Error(`${SERVER_BIN} is missing: run \`npx tsc -b\` first`);
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(tmpdir(), 'rockit-hostile-'));
  const schema = `h_${randomBytes(6).toString('hex')}`;
  const env: NodeJS.ProcessEnv = {};
  // eslint-disable-next-line no-restricted-properties -- the child inherits PATH and the like, never a ROCKIT_* variable
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ROCKIT_')) env[k] = v;
  Object.assign(env, {
    ROCKIT_ADMIN_TOKEN: ADMIN_TOKEN,
    ROCKIT_SCRYPT_COST: '1024',
    ROCKIT_WORKER_POLL_MS: '50',
    ROCKIT_LOG_LEVEL: 'info',
    ...(opts.pg ? { ROCKIT_DATABASE_URL: PG_URL, ROCKIT_DATABASE_SCHEMA: schema } : {}),
    ...opts.env,
  });
  const proc = spawn(process.execPath, [SERVER_BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--data', dataDir], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const cleanup = async (): Promise<void> => {
    if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (opts.pg) {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => client.end());
    }
  };
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`the server did not come up: ${out}`));
    }, 30_000);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code}: ${out}`));
    };
    proc.once('exit', onExit);
    proc.stdout!.on('data', function onData() {
      for (const line of out.split('\n')) {
        if (!line.includes('rockit-edge listening')) continue;
        try {
          const rec = JSON.parse(line) as { msg?: string; address?: string };
          if (rec.msg === 'rockit-edge listening' && rec.address) {
            clearTimeout(timer);
            proc.off('exit', onExit);
            proc.stdout!.off('data', onData);
            resolve(rec.address);
            return;
          }
        } catch {
          /* an incomplete line */
        }
      }
    });
  }).catch(async (err) => {
    await cleanup().catch(() => undefined);
    throw err;
  });
  return {
    baseUrl,
    dataDir,
    proc,
    log: () => out,
    admin: { 'x-rockit-admin-token': ADMIN_TOKEN },
    async req(method, url, o = {}) {
      const res = await fetch(baseUrl + url, {
        method,
        headers: { ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers },
        ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
      });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      return { status: res.status, body };
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
      await cleanup();
    },
  };
}

let seq = 0;
export const uniqueName = (prefix: string): string => `${prefix}_${process.pid}_${++seq}`;

/** Creates an org through the admin API and logs its administrator in: auth headers. */
export async function orgAdmin(s: RealServer, name = uniqueName('org')): Promise<{ name: string; headers: Record<string, string> }> {
  const o = await s.req('POST', '/adm/v1/orgs', { headers: s.admin, body: { name } });
  if (o.status !== 201) throw new Error(`org: ${o.status} ${JSON.stringify(o.body)}`);
  const l = await s.req('POST', '/be/v1/login', { body: { orgName: name, username: o.body.admin.username, password: o.body.admin.password } });
  if (l.status !== 200) throw new Error(`login: ${l.status} ${JSON.stringify(l.body)}`);
  const a = await s.req('POST', '/be/v1/auth', { headers: { 'x-rockit-besession-token': l.body.session.token } });
  if (a.status !== 200) throw new Error(`auth: ${a.status} ${JSON.stringify(a.body)}`);
  return { name, headers: { 'x-rockit-beauth-token': a.body.auth.token } };
}
