import { findApiKeyInOrg, revokeApiKey } from '../db/repositories/credential.repository.js';
import { findUser } from '../db/repositories/user.repository.js';
import { invalidParam, notFound } from '../domain/errors.js';
import { requireCovers, requirePermission, type Principal, type ServiceDeps } from './context.js';
import { createApiKeyRow, permissionsOfUser } from './user.service.js';

/** API keys of machine users (users.update). A machine user may hold several keys for rotation. */
export class ApiKeyService {
  constructor(private readonly deps: ServiceDeps) {}

  /**
   * Errors: not-found for an unknown user; invalid-param `username` for a user account (not machine);
   * forbidden unless the caller covers the machine user's permission (a key never grants more than
   * its creator holds, spec §2.3).
   */
  async create(auth: Principal, input: { username: string }): Promise<{ id: string; key: string; created: number }> {
    const caller = requirePermission(auth, 'beUsers', 'update');
    const target = await findUser(this.deps.db, caller.orgId, input.username);
    if (!target) throw notFound('user', input.username);
    if (target.type !== 'machine') throw invalidParam('username', 'must name a machine user');
    requireCovers(caller, await permissionsOfUser(this.deps.db, target.id), `a key for '${input.username}'`);
    return createApiKeyRow(this.deps.db, target.id, this.deps.clock.now());
  }

  /** Revokes one key at once. A key of another org, or already revoked, is not-found; a key of a user the caller does not cover is forbidden. */
  async revoke(auth: Principal, id: string): Promise<void> {
    const caller = requirePermission(auth, 'beUsers', 'update');
    const key = await findApiKeyInOrg(this.deps.db, caller.orgId, id);
    if (!key || key.revoked_ms !== null) throw notFound('API key', id);
    requireCovers(caller, await permissionsOfUser(this.deps.db, key.user_id), 'revoking a key of a user with more permissions');
    await revokeApiKey(this.deps.db, id, this.deps.clock.now());
  }
}
