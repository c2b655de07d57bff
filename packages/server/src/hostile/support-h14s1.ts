/**
 * The real server binary (packages/server/dist/bin.js, built by `npx tsc -b`) for the hostile tests of
 * issue 14 (download keys, download tokens, trace intake): a free loopback port, a temp data folder,
 * SQLite or a fresh PostgreSQL schema; spoken to over HTTP only.
 */
import { TEST_DIALECTS, call, startEdge as startReal, type Dialect } from './support.js';

export { call, type Dialect };
export const DIALECTS: Dialect[] = TEST_DIALECTS;

export interface Edge {
  base: string;
  admin: Record<string, string>;
  log(): string;
  dispose(): Promise<void>;
}

/** Starts `rockit-edge serve` (support.ts) and resolves once it logs its address. */
export async function startEdge(dialect: Dialect, extraEnv: Record<string, string> = {}): Promise<Edge> {
  return startReal({ dialect, env: { ROCKIT_INSTALLATION_KEY: '22'.repeat(32), ...extraEnv } });
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
