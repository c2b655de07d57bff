import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostileLogin, hostileOrg, rawRequest, startEdge, type EdgeProcess } from './support-h8a.js';

/** Issue 8 item 1: nobody hands out more than they hold (api.md §2.3 "No escalation"), through the real binary. */
describe('hostile: permission escalation (issue 8 item 1)', () => {
  let edge: EdgeProcess;
  let admin: Record<string, string>;
  let orgName: string;
  const call = (method: string, path: string, headers: Record<string, string>, body?: unknown) => rawRequest(edge, method, path, { headers, body });

  async function userWith(permissions: Record<string, number>, name: string): Promise<Record<string, string>> {
    expect((await call('POST', '/be/v1/roles', admin, { name: `r_${name}`, permissions })).status).toBe(201);
    const u = await call('POST', '/be/v1/users', admin, { username: name, email: `${name}@example.com`, firstname: 'E', surname: 'V', roles: [`r_${name}`] });
    expect(u.status, u.text).toBe(201);
    return hostileLogin(edge, orgName, name, u.json.password);
  }

  beforeAll(async () => {
    edge = await startEdge();
    const org = await hostileOrg(edge, 'hostile_esc');
    orgName = org.name;
    admin = await hostileLogin(edge, org.name, org.username, org.password);
  }, 60_000);
  afterAll(() => edge?.stop());

  it('beUsers create alone cannot create an Administrator', async () => {
    const h = await userWith({ beUsers: 3 }, 'creator');
    const r = await call('POST', '/be/v1/users', h, { username: 'evil_admin', email: 'e@example.com', firstname: 'E', surname: 'V', roles: ['Administrators'] });
    expect(r.status, r.text).toBe(403);
    expect(r.json).toMatchObject({ status: 'error', error: 'forbidden' });
    expect(r.json.password).toBeUndefined();
    expect((await call('GET', '/be/v1/users/evil_admin', admin)).status).toBe(404);
  });

  it('beUsers update alone cannot mint an API key for an Administrators machine user', async () => {
    expect((await call('POST', '/be/v1/users', admin, { username: 'ci_admin', label: 'CI', roles: ['Administrators'] })).status).toBe(201);
    const h = await userWith({ beUsers: 4 }, 'updater');
    const r = await call('POST', '/be/v1/apikeys', h, { username: 'ci_admin' });
    expect(r.status, r.text).toBe(403);
    expect(r.json.error).toBe('forbidden');
    expect(r.json.apiKey).toBeUndefined();
  });

  it('roles.update cannot raise its own role to everything', async () => {
    const h = await userWith({ roles: 6 }, 'roler');
    const r = await call('PATCH', '/be/v1/roles', h, { name: 'r_roler', permissions: { apps: 15, beUsers: 15, roles: 15 } });
    expect(r.status, r.text).toBe(403);
    expect(r.json.error).toBe('forbidden');
    expect((await call('GET', '/be/v1/roles/r_roler', admin)).json.role.permissions).toMatchObject({ apps: 0, beUsers: 0, roles: 6 });
  });

  it("full beUsers cannot reset an administrator's password", async () => {
    const h = await userWith({ beUsers: 15 }, 'resetter');
    const r = await call('PATCH', '/be/v1/users', h, { username: 'admin', resetCreds: 'attacker-chosen-pw' });
    expect(r.status, r.text).toBe(403);
    expect(r.json.error).toBe('forbidden');
    expect((await rawRequest(edge, 'POST', '/be/v1/login', { body: { orgName, username: 'admin', password: 'attacker-chosen-pw' } })).status).toBe(401);
  });
});
