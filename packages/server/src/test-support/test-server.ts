import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { loadConfig } from '../config/config.js';
import { ManualClock } from '../domain/clock.js';
import { buildServer, type Server, type ServerOptions } from '../server.js';

export type Dialect = 'sqlite' | 'pg';

/** Dialects to run integration tests on: env ROCKIT_TEST_DIALECTS (default "sqlite,pg"). */
export const TEST_DIALECTS: Dialect[] = (process.env.ROCKIT_TEST_DIALECTS ?? 'sqlite,pg')
  .split(',')
  .map((s) => s.trim())
  .filter((s): s is Dialect => s === 'sqlite' || s === 'pg');

export const TEST_PG_URL = process.env.ROCKIT_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdefgh';

export interface TestServer {
  server: Server;
  app: FastifyInstance;
  clock: ManualClock;
  dialect: Dialect;
  dataDir: string;
  /** Shorthand for app.inject with JSON. */
  req(method: string, url: string, opts?: { headers?: Record<string, string>; body?: unknown; remoteAddress?: string }): Promise<LightMyRequestResponse & { json(): any }>;
  admin: Record<string, string>;
  close(): Promise<void>;
}

export interface TestServerOptions extends Partial<Omit<ServerOptions, 'config'>> {
  dialect: Dialect;
  /** Another test server's database (a second node of a cluster): `close` leaves it in place. */
  sharesDatabase?: boolean;
  env?: Record<string, string>;
}

/** The real app on a temp SQLite file or a fresh PostgreSQL schema (dropped on close). */
export async function createTestServer(opts: TestServerOptions): Promise<TestServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-test-'));
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const env: Record<string, string> = {
    ROCKIT_ADMIN_TOKEN: ADMIN_TOKEN,
    ROCKIT_SCRYPT_COST: '1024',
    ROCKIT_WORKER_POLL_MS: '20',
    ROCKIT_LOG_LEVEL: 'silent',
    ...(opts.dialect === 'pg' ? { ROCKIT_DATABASE_URL: TEST_PG_URL, ROCKIT_DATABASE_SCHEMA: schema } : {}),
    ...opts.env,
  };
  const config = loadConfig({ data: dataDir, port: 0 }, env);
  const clock = opts.clock instanceof ManualClock ? opts.clock : new ManualClock();
  let server: Server;
  try {
    server = await buildServer({ logger: false, print: () => {}, ...opts, config, clock });
    await server.app.ready();
  } catch (e) {
    fs.rmSync(dataDir, { recursive: true, force: true });
    if (opts.dialect === 'pg') await dropSchema(schema).catch(() => {});
    throw e;
  }
  const admin = { 'x-rockit-admin-token': ADMIN_TOKEN };
  return {
    server,
    app: server.app,
    clock,
    dialect: opts.dialect,
    dataDir,
    admin,
    req: async (method, url, o = {}) =>
      (await server.app.inject({
        method: method as any,
        url,
        headers: o.headers,
        ...(o.remoteAddress ? { remoteAddress: o.remoteAddress } : {}),
        ...(o.body !== undefined ? { payload: o.body as any } : {}),
      })) as any,
    close: async () => {
      await server.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
      if (opts.dialect === 'pg' && !opts.sharesDatabase) await dropSchema(config.database.kind === 'pg' ? config.database.schema! : schema);
    },
  };
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}
