/**
 * The real server binary (packages/server/dist/bin.js, built by `npx tsc -b`) for the whole hostile suite:
 * started on a free loopback port with a temp data folder, on SQLite or on a fresh PostgreSQL schema, and
 * spoken to over HTTP only. The suite's other support files adapt this one to their tests' shapes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

// Kept apart from test-support/ (which tsc leaves out): this file is compiled with the package.
// A test helper (never loaded by the server): it reads the test runner's environment, once, here.
// eslint-disable-next-line no-restricted-properties -- test helper, see above
const testEnv: NodeJS.ProcessEnv = process.env;
export type Dialect = 'sqlite' | 'pg';
/** Dialects to run on: env ROCKIT_TEST_DIALECTS (default "sqlite,pg"), as the other integration tests. */
export const TEST_DIALECTS: Dialect[] = (testEnv.ROCKIT_TEST_DIALECTS ?? 'sqlite,pg')
  .split(',')
  .map((s) => s.trim())
  .filter((s): s is Dialect => s === 'sqlite' || s === 'pg');
const TEST_PG_URL = testEnv.ROCKIT_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

export const SERVER_BIN = fileURLToPath(new URL('../../dist/bin.js', import.meta.url));
export const CLI_BIN = fileURLToPath(new URL('../../../cli/dist/bin.js', import.meta.url));
export const binariesBuilt = (): boolean => existsSync(SERVER_BIN) && existsSync(CLI_BIN);
export const HOSTILE_ADMIN_TOKEN = 'hostile-admin-token-0123456789abcdef';

export interface EdgeProcess {
  base: string;
  /** The server's process (its pid is part of some hostile paths). */
  proc: ChildProcess;
  dataDir: string;
  dialect: Dialect;
  /** Everything the server wrote so far. */
  log(): string;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL (no clean-up at all) and wait for the exit. */
  kill9(): Promise<void>;
  /** Starts the binary again on the same data folder and database (after stop or kill9). */
  restart(): Promise<EdgeProcess>;
  /** Stops it (if running), removes the data folder and the PostgreSQL schema. */
  dispose(): Promise<void>;
  admin: Record<string, string>;
}

/** process.env without ROCKIT_* variables (the caller's shell cannot change what is tested), plus `extra`. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(testEnv)) if (!k.startsWith('ROCKIT_')) env[k] = v;
  return Object.assign(env, extra);
}

export interface StartEdgeOptions {
  dialect: Dialect;
  env?: Record<string, string>;
  dataDir?: string;
  schema?: string;
}

/** Starts `rockit-edge serve`; resolves when it logs that it listens, rejects with its output if it exits first. */
export async function startEdge(opts: StartEdgeOptions): Promise<EdgeProcess> {
  if (!existsSync(SERVER_BIN)) throw new Error(`${SERVER_BIN} is missing: run \`npx tsc -b\` first`);
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'rockit-hostile-'));
  const schema = opts.schema ?? `h_${randomBytes(6).toString('hex')}`;
  const env: Record<string, string> = {
    ROCKIT_ADMIN_TOKEN: HOSTILE_ADMIN_TOKEN,
    ROCKIT_SCRYPT_COST: '1024',
    ROCKIT_WORKER_POLL_MS: '50',
    ROCKIT_LOG_LEVEL: 'info',
    ROCKIT_INSTALLATION_KEY: '11'.repeat(32),
    ...(opts.dialect === 'pg' ? { ROCKIT_DATABASE_URL: TEST_PG_URL, ROCKIT_DATABASE_SCHEMA: schema } : {}),
    ...opts.env,
  };
  const proc: ChildProcess = spawn(process.execPath, [SERVER_BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--data', dataDir], {
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not come up: ${out}`));
    }, 60_000);
    const onData = (): void => {
      for (const line of out.split('\n')) {
        if (!line.includes('rockit-edge listening')) continue;
        try {
          const rec = JSON.parse(line) as { address?: string };
          if (rec.address) {
            clearTimeout(timer);
            proc.stdout!.off('data', onData);
            resolve(rec.address);
            return;
          }
        } catch {
          /* an incomplete line */
        }
      }
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${out}`));
    });
  });
  const running = (): boolean => proc.exitCode === null && proc.signalCode === null;
  const self: EdgeProcess = {
    base,
    proc,
    dataDir,
    dialect: opts.dialect,
    admin: { 'x-rockit-admin-token': HOSTILE_ADMIN_TOKEN },
    log: () => out,
    async stop() {
      if (running()) proc.kill('SIGTERM');
      await exited;
    },
    async kill9() {
      if (running()) proc.kill('SIGKILL');
      await exited;
    },
    restart: () => startEdge({ ...opts, dataDir, schema }),
    async dispose() {
      await self.stop();
      rmSync(dataDir, { recursive: true, force: true });
      if (opts.dialect === 'pg') await dropSchema(schema).catch(() => undefined);
    },
  };
  return self;
}

/** A request with a JSON body (or raw bytes / text, sent as they are); returns the status, headers and parsed body. */
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

/** Creates an org through the admin API and returns user auth headers for its first administrator. */
export async function newOrg(edge: EdgeProcess, orgName: string): Promise<Record<string, string>> {
  const created = await call(edge.base, 'POST', '/adm/v1/orgs', edge.admin, { name: orgName });
  if (created.status !== 201) throw new Error(`create org: ${created.status} ${JSON.stringify(created.json)}`);
  const login = await call(edge.base, 'POST', '/be/v1/login', {}, { orgName, username: created.json.admin.username, password: created.json.admin.password });
  if (login.status !== 200) throw new Error(`login: ${login.status} ${JSON.stringify(login.json)}`);
  const auth = await call(edge.base, 'POST', '/be/v1/auth', { 'x-rockit-besession-token': login.json.session.token });
  if (auth.status !== 200) throw new Error(`auth: ${auth.status} ${JSON.stringify(auth.json)}`);
  return { 'x-rockit-beauth-token': auth.json.auth.token };
}

/** Creates an app (no deployments needed for import: the depot is the installation's own). */
export async function newApp(edge: EdgeProcess, user: Record<string, string>, name: string): Promise<void> {
  const r = await call(edge.base, 'POST', '/be/v1/apps', user, { name, label: name });
  if (r.status !== 201 && r.status !== 200) throw new Error(`create app: ${r.status} ${JSON.stringify(r.json)}`);
}

/** POST /be/v1/builds without url, then PUT the bytes to the upload URL. Returns the dltar task's name. */
export async function uploadBuild(edge: EdgeProcess, user: Record<string, string>, appName: string, bytes: Uint8Array): Promise<string> {
  const r = await call(edge.base, 'POST', '/be/v1/builds', user, { appName });
  if (r.status !== 202) throw new Error(`submit build: ${r.status} ${JSON.stringify(r.json)}`);
  const put = await fetch(r.json.upload.url as string, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  if (put.status >= 300) throw new Error(`upload PUT: ${put.status} ${await put.text()}`);
  return r.json.task.name as string;
}

/** Polls a task until `done(task)`; follows `result.nextTask` when `follow` is set. Throws after `timeoutMs`. */
export async function waitTask(edge: EdgeProcess, user: Record<string, string>, name: string, done: (task: any) => boolean, timeoutMs = 120_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await call(edge.base, 'GET', `/be/v1/tasks/${name}`, user);
    if (r.status === 200 && done(r.json.task)) return r.json.task;
    if (Date.now() > deadline) throw new Error(`task ${name} did not finish: ${JSON.stringify(r.json)}\n${edge.log().slice(-4000)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

export const ended = (t: any): boolean => ['succeeded', 'failed', 'expired', 'canceled'].includes(t.status as string);

/** Waits for an import to end: dltar, then its mkraw (and deploy when there is one). Returns the last task that ran. */
export async function waitImport(edge: EdgeProcess, user: Record<string, string>, dltar: string, timeoutMs = 180_000): Promise<any> {
  let task = await waitTask(edge, user, dltar, ended, timeoutMs);
  while (task.status === 'succeeded' && typeof task.result?.nextTask === 'string') {
    task = await waitTask(edge, user, task.result.nextTask as string, ended, timeoutMs);
  }
  return task;
}
