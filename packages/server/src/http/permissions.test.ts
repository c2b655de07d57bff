import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOrgByName } from '../db/repositories/org.repository.js';
import { enqueueTask } from '../queue/tasks.queue.js';
import { createMachineUser, createOrg, createRole, createUser, loginAdmin, uniqueName, type OrgFixture, type Session } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

type Bit = 'create' | 'read' | 'update' | 'delete' | 'execute';
const BITS: Record<Bit, number> = { create: 1, read: 2, update: 4, delete: 8, execute: 16 };

interface Endpoint {
  name: string;
  resource: string;
  bit: Bit;
  /** The permission name a refusal carries. */
  permission: string;
  /**
   * Calls the endpoint as `headers`. When the call should be allowed, a real target is prepared
   * with the admin first; a refused call needs none (permissions are checked before lookups).
   */
  call(headers: Record<string, string>, allowed: boolean): Promise<{ statusCode: number; json(): any }>;
}

/** Each resource × each bit: a user holding exactly that bit is allowed exactly the endpoints needing it. */
describe.each(TEST_DIALECTS)('permission matrix (%s)', (dialect) => {
  let t: TestServer;
  let org: OrgFixture;
  let admin: Session;
  let taskName: string;
  beforeAll(async () => {
    t = await createTestServer({ dialect });
    org = await createOrg(t);
    admin = await loginAdmin(t, org);
    const row = await findOrgByName(t.server.db.db, org.name);
    taskName = (await enqueueTask(t.server.db.db, t.clock.now(), { type: 'noop_type', payload: {}, orgId: row!.id, maxAttempts: 1 })).name;
  });
  afterAll(() => t?.close());

  const A = () => admin.headers;
  const endpoints: Endpoint[] = [
    { name: 'POST /be/v1/roles', resource: 'roles', bit: 'create', permission: 'roles.create',
      call: (h) => t.req('POST', '/be/v1/roles', { headers: h, body: { name: uniqueName('r'), permissions: {} } }) },
    { name: 'GET /be/v1/roles', resource: 'roles', bit: 'read', permission: 'roles.read', call: (h) => t.req('GET', '/be/v1/roles', { headers: h }) },
    { name: 'GET /be/v1/roles/{name}', resource: 'roles', bit: 'read', permission: 'roles.read', call: (h) => t.req('GET', '/be/v1/roles/Administrators', { headers: h }) },
    { name: 'PATCH /be/v1/roles', resource: 'roles', bit: 'update', permission: 'roles.update',
      call: async (h, ok) => t.req('PATCH', '/be/v1/roles', { headers: h, body: { name: ok ? await createRole(t, A(), {}) : 'no_role', label: 'L' } }) },
    { name: 'DELETE /be/v1/roles/{name}', resource: 'roles', bit: 'delete', permission: 'roles.delete',
      call: async (h, ok) => t.req('DELETE', `/be/v1/roles/${ok ? await createRole(t, A(), {}) : 'no_role'}`, { headers: h }) },
    { name: 'POST /be/v1/users', resource: 'beUsers', bit: 'create', permission: 'users.create',
      call: (h) => t.req('POST', '/be/v1/users', { headers: h, body: { username: uniqueName('m'), label: 'x', roles: [] } }) },
    { name: 'GET /be/v1/users', resource: 'beUsers', bit: 'read', permission: 'users.read', call: (h) => t.req('GET', '/be/v1/users', { headers: h }) },
    { name: 'GET /be/v1/users/{username}', resource: 'beUsers', bit: 'read', permission: 'users.read', call: (h) => t.req('GET', '/be/v1/users/admin', { headers: h }) },
    { name: 'PATCH /be/v1/users (another user)', resource: 'beUsers', bit: 'update', permission: 'users.update',
      // Allowed on a user the caller covers (no roles); an Administrator is beyond it (escalation.test.ts).
      call: async (h, ok) => t.req('PATCH', '/be/v1/users', { headers: h, body: ok ? { username: (await createMachineUser(t, org, A(), [])).username, label: 'Boss' } : { username: 'admin', firstname: 'Boss' } }) },
    { name: 'DELETE /be/v1/users/{username}', resource: 'beUsers', bit: 'delete', permission: 'users.delete',
      call: async (h, ok) => t.req('DELETE', `/be/v1/users/${ok ? (await createMachineUser(t, org, A(), [])).username : 'no_user'}`, { headers: h }) },
    { name: 'POST /be/v1/apikeys', resource: 'beUsers', bit: 'update', permission: 'users.update',
      call: async (h, ok) => t.req('POST', '/be/v1/apikeys', { headers: h, body: { username: ok ? (await createMachineUser(t, org, A(), [])).username : 'no_user' } }) },
    { name: 'DELETE /be/v1/apikeys/{id}', resource: 'beUsers', bit: 'update', permission: 'users.update',
      call: async (h, ok) => t.req('DELETE', `/be/v1/apikeys/${ok ? (await createMachineUser(t, org, A(), [])).keyId : 'k_none'}`, { headers: h }) },
    { name: 'GET /be/v1/tasks', resource: 'tasks', bit: 'read', permission: 'tasks.read', call: (h) => t.req('GET', '/be/v1/tasks', { headers: h }) },
    { name: 'GET /be/v1/tasks/{name}', resource: 'tasks', bit: 'read', permission: 'tasks.read', call: (h) => t.req('GET', `/be/v1/tasks/${taskName}`, { headers: h }) },
  ];

  const grants: Array<[string, Bit[]]> = [
    ['roles', ['create', 'read', 'update', 'delete']],
    ['beUsers', ['create', 'read', 'update', 'delete']],
    ['tasks', ['create', 'read', 'update', 'delete', 'execute']],
    ['apps', ['create', 'read', 'update', 'delete']],
    ['consumption', ['read']],
  ];

  for (const [resource, bits] of grants) {
    for (const bit of bits) {
      it(`${resource}.${bit} allows exactly its endpoints`, async () => {
        admin = await loginAdmin(t, org);
        const role = await createRole(t, A(), { [resource]: BITS[bit] });
        // A machine user, so API keys are covered by the matrix too, and a user account for the tokens.
        const viaKey = await createMachineUser(t, org, A(), [role]);
        const viaToken = await createUser(t, org, A(), [role]);
        for (const ep of endpoints) {
          const allowed = ep.resource === resource && ep.bit === bit;
          for (const headers of [viaKey.headers, viaToken.headers]) {
            const r = await ep.call(headers, allowed);
            if (allowed) {
              expect(r.statusCode, `${ep.name} with ${resource}.${bit}: ${JSON.stringify(r.json())}`).toBeLessThan(300);
            } else {
              expect(r.statusCode, `${ep.name} with ${resource}.${bit}`).toBe(403);
              expect(r.json()).toMatchObject({ error: 'forbidden', permission: ep.permission });
            }
          }
        }
      });
    }
  }

  it('no roles: every endpoint refused except reading and patching oneself', async () => {
    admin = await loginAdmin(t, org);
    const u = await createUser(t, org, A(), []);
    for (const ep of endpoints) expect((await ep.call(u.headers, false)).statusCode, ep.name).toBe(403);
    expect((await t.req('GET', `/be/v1/users/${u.username}`, { headers: u.headers })).statusCode).toBe(200);
    expect((await t.req('PATCH', '/be/v1/users', { headers: u.headers, body: { surname: 'Self' } })).statusCode).toBe(200);
  });
});
