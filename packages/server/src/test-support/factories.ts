import { expect } from 'vitest';
import type { TestServer } from './test-server.js';

let seq = 0;
export const uniqueName = (prefix: string): string => `${prefix}_${process.pid}_${++seq}`;

export interface OrgFixture {
  name: string;
  adminUsername: string;
  adminPassword: string;
}

/** Creates an org through the admin API. */
export async function createOrg(t: TestServer, name = uniqueName('org')): Promise<OrgFixture> {
  const r = await t.req('POST', '/adm/v1/orgs', { headers: t.admin, body: { name } });
  expect(r.statusCode, r.body).toBe(201);
  const j = r.json();
  return { name, adminUsername: j.admin.username, adminPassword: j.admin.password };
}

export interface Session {
  sessionToken: string;
  authToken: string;
  /** Headers authenticating with the auth token. */
  headers: Record<string, string>;
}

/** login + auth: a session token and an auth token. */
export async function login(t: TestServer, orgName: string, username: string, password: string): Promise<Session> {
  const l = await t.req('POST', '/be/v1/login', { body: { orgName, username, password } });
  expect(l.statusCode, l.body).toBe(200);
  const sessionToken = l.json().session.token as string;
  const a = await t.req('POST', '/be/v1/auth', { headers: { 'x-rockit-besession-token': sessionToken } });
  expect(a.statusCode, a.body).toBe(200);
  const authToken = a.json().auth.token as string;
  return { sessionToken, authToken, headers: { 'x-rockit-beauth-token': authToken } };
}

export const loginAdmin = (t: TestServer, org: OrgFixture): Promise<Session> => login(t, org.name, org.adminUsername, org.adminPassword);

/** Creates a role with `permissions` (as the org admin) and returns its name. */
export async function createRole(t: TestServer, adminHeaders: Record<string, string>, permissions: Record<string, number>, name = uniqueName('role')): Promise<string> {
  const r = await t.req('POST', '/be/v1/roles', { headers: adminHeaders, body: { name, permissions } });
  expect(r.statusCode, r.body).toBe(201);
  return name;
}

/** Creates a user account with these roles, logs it in. */
export async function createUser(
  t: TestServer,
  org: OrgFixture,
  adminHeaders: Record<string, string>,
  roles: string[],
  username = uniqueName('u'),
): Promise<Session & { username: string; password: string }> {
  const r = await t.req('POST', '/be/v1/users', {
    headers: adminHeaders,
    body: { username, email: `${username}@example.com`, firstname: 'Test', surname: 'User', roles },
  });
  expect(r.statusCode, r.body).toBe(201);
  const password = r.json().password as string;
  return { ...(await login(t, org.name, username, password)), username, password };
}

/** Creates a machine user with these roles; returns its API-key headers. */
export async function createMachineUser(
  t: TestServer,
  org: OrgFixture,
  adminHeaders: Record<string, string>,
  roles: string[],
  username = uniqueName('m'),
): Promise<{ username: string; keyId: string; key: string; headers: Record<string, string> }> {
  const r = await t.req('POST', '/be/v1/users', { headers: adminHeaders, body: { username, label: 'CI machine', roles } });
  expect(r.statusCode, r.body).toBe(201);
  const { id, key } = r.json().apiKey;
  return {
    username, keyId: id, key,
    headers: { 'x-rockit-orgname': org.name, 'x-rockit-username': username, 'x-rockit-api-key': key },
  };
}
