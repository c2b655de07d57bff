/**
 * The real server binary (packages/server/dist/bin.js) for hostile tests of items 2, 3 and 6:
 * started on a free loopback port in its own data folder, spoken to over real HTTP only.
 */
import type { ChildProcess } from 'node:child_process';
import { call, startEdge } from './support.js';

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
 * Starts `rockit-edge serve` (support.ts) with only the given ROCKIT_* variables (plus an admin token, a cheap
 * scrypt cost and a fast worker poll). `pg: true` puts it on a fresh PostgreSQL schema, dropped on stop; a
 * `dataDir` of the caller's is kept.
 */
export async function startRealServer(opts: { env?: Record<string, string>; pg?: boolean; dataDir?: string } = {}): Promise<RealServer> {
  const edge = await startEdge({ dialect: opts.pg ? 'pg' : 'sqlite', ...(opts.env ? { env: opts.env } : {}), ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) });
  return {
    baseUrl: edge.base,
    dataDir: edge.dataDir,
    proc: edge.proc,
    log: edge.log,
    admin: edge.admin,
    async req(method, url, o = {}) {
      const r = await call(edge.base, method, url, o.headers ?? {}, o.body);
      return { status: r.status, body: r.json };
    },
    stop: () => (opts.dataDir ? edge.stop() : edge.dispose()),
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
