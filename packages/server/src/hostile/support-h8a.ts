/**
 * The real server binary (packages/server/dist/bin.js) for the hostile suite of branch h8a: spawned
 * on a free loopback port with a temp data folder, spoken to over raw HTTP only (node:http, so that
 * hostile paths and headers reach the server byte for byte, unlike fetch which normalises URLs).
 */
import http from 'node:http';
import { HOSTILE_ADMIN_TOKEN, SERVER_BIN, cleanEnv, startEdge as startReal } from './support.js';

export { HOSTILE_ADMIN_TOKEN };
export const EDGE_BIN = SERVER_BIN;
/** The test process's environment without any ROCKIT_* variable, plus `extra`. */
export const childEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => cleanEnv(extra);

export interface EdgeProcess {
  /** `http://127.0.0.1:<port>` */
  address: string;
  port: number;
  log(): string;
  stop(): Promise<void>;
}

/** Starts `rockit-edge serve` (support.ts; SQLite in a temp folder, no worker) and resolves once it listens. */
export async function startEdge(extraEnv: Record<string, string> = {}): Promise<EdgeProcess> {
  const edge = await startReal({ dialect: 'sqlite', env: { ROCKIT_NO_WORKER: 'true', ...extraEnv } });
  return { address: edge.base, port: Number(new URL(edge.base).port), log: edge.log, stop: () => edge.dispose() };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: any;
}

/**
 * One HTTP request with the path sent exactly as given. `body`: an object is sent as JSON (with
 * content-type application/json unless `headers` names one), a string or Buffer as is.
 */
export function rawRequest(
  edge: EdgeProcess,
  method: string,
  rawPath: string,
  opts: { headers?: Record<string, string>; body?: unknown } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  let payload: Buffer | undefined;
  if (opts.body !== undefined) {
    payload = Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: edge.port, method, path: rawPath, headers, insecureHTTPParser: true }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: any;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export const adminHeaders = { 'x-rockit-admin-token': HOSTILE_ADMIN_TOKEN };

/** Creates an org through the admin API; returns its first administrator's credentials. */
export async function hostileOrg(edge: EdgeProcess, name: string): Promise<{ name: string; username: string; password: string }> {
  const r = await rawRequest(edge, 'POST', '/adm/v1/orgs', { headers: adminHeaders, body: { name } });
  if (r.status !== 201) throw new Error(`create org: ${r.status} ${r.text}`);
  return { name, username: r.json.admin.username, password: r.json.admin.password };
}

/** login + auth; returns the headers of the auth token. */
export async function hostileLogin(edge: EdgeProcess, orgName: string, username: string, password: string): Promise<Record<string, string>> {
  const l = await rawRequest(edge, 'POST', '/be/v1/login', { body: { orgName, username, password } });
  if (l.status !== 200) throw new Error(`login: ${l.status} ${l.text}`);
  const a = await rawRequest(edge, 'POST', '/be/v1/auth', { headers: { 'x-rockit-besession-token': l.json.session.token } });
  if (a.status !== 200) throw new Error(`auth: ${a.status} ${a.text}`);
  return { 'x-rockit-beauth-token': a.json.auth.token };
}
