import { randomUUID } from 'node:crypto';
import { isUniqueViolation } from '../db/errors.js';
import { deleteOrg, findOrgByName, insertOrg, listOrgs } from '../db/repositories/org.repository.js';
import { insertRole } from '../db/repositories/role.repository.js';
import { insertUser, setUserRoles } from '../db/repositories/user.repository.js';
import { AppError, notFound } from '../domain/errors.js';
import { parseListQuery, project, type Page, type RawListQuery } from '../domain/list.js';
import { allPermissions } from '../domain/permissions.js';
import { hashPassword, randomPassword } from '../domain/secrets.js';
import type { Principal, ServiceDeps } from './context.js';
import type { CreateOrgAnswer, CreateOrgInput, OrgDto } from '@rockit/contract';
import { toOrgDto } from './mappers.js';

/** The create answer without its envelope; the first administrator's password is returned once, stored only as a hash. */
export type CreateOrgResult = Omit<CreateOrgAnswer, 'status'>;

export const ADMINISTRATORS_ROLE = 'Administrators';

const ORG_LIST = {
  orderable: ['name', 'label', 'created', 'updated'],
  fields: ['name', 'label', 'created', 'updated'],
  defaultOrder: [{ field: 'name', desc: false }],
} as const;
const ORG_COLUMNS: Record<string, string> = { name: 'name', label: 'label', created: 'created_ms', updated: 'updated_ms' };

/** Organizations: created by the installation admin (or operator-org Administrators, spec §4). */
export class OrgService {
  constructor(private readonly deps: ServiceDeps) {}

  /**
   * One transaction: the org, its Administrators role (every maximum, builtin) and its first
   * administrator. Errors: forbidden (orgs.create) for users outside the operator org's
   * Administrators; already-exists when the name is taken.
   */
  async create(auth: Principal, input: CreateOrgInput): Promise<CreateOrgResult> {
    if (auth.kind === 'user' && !(auth.isAdministrator && this.deps.config.operatorOrg === auth.orgName)) {
      throw new AppError('forbidden', 'only Administrators of the operator organization may create organizations', {
        permission: 'orgs.create',
      });
    }
    const { db, clock, config } = this.deps;
    const now = clock.now();
    const username = input.adminUsername ?? 'admin';
    const password = randomPassword();
    const passwordHash = await hashPassword(password, config.scryptCost);
    const org = { id: randomUUID(), name: input.name, label: input.label ?? input.name, created_ms: now, updated_ms: now };
    try {
      await db.transaction().execute(async (trx) => {
        await insertOrg(trx, org);
        const roleId = randomUUID();
        await insertRole(trx, {
          id: roleId, org_id: org.id, name: ADMINISTRATORS_ROLE, label: ADMINISTRATORS_ROLE,
          permissions: JSON.stringify(allPermissions()), builtin: 1, created_ms: now, updated_ms: now,
        });
        const userId = randomUUID();
        await insertUser(trx, {
          id: userId, org_id: org.id, username, type: 'user', email: input.adminEmail ?? null, firstname: null, surname: null,
          title: null, label: null, password_hash: passwordHash, disabled: 0, created_ms: now, updated_ms: now, last_login_ms: null,
        });
        await setUserRoles(trx, userId, [roleId]);
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw new AppError('already-exists', `organization '${input.name}' already exists`, { param: 'name' });
      throw e;
    }
    return { org: toOrgDto(org), admin: { username, password } };
  }

  async list(auth: Principal, raw: RawListQuery): Promise<Page<OrgDto>> {
    if (auth.kind !== 'admin') throw new AppError('forbidden', 'admin only', { permission: 'orgs.read' });
    const q = parseListQuery(raw, ORG_LIST);
    const { total, rows } = await listOrgs(this.deps.db, {
      offset: q.offset,
      limit: q.limit,
      order: q.order.map((o) => ({ column: ORG_COLUMNS[o.field], desc: o.desc })),
    });
    return { total, offset: q.offset, limit: q.limit, items: rows.map((r) => project(toOrgDto(r), q.fields)) };
  }

  async get(auth: Principal, name: string): Promise<OrgDto> {
    if (auth.kind !== 'admin' && auth.orgName !== name) throw notFound('organization', name);
    const org = await findOrgByName(this.deps.db, name);
    if (!org) throw notFound('organization', name);
    return toOrgDto(org);
  }

  /**
   * Deletes the org and all its records; with `prune`, then its stored and published files
   * (through the pruneOrgFiles hook, after the records are gone). Users may delete their own org
   * when they are its Administrators, or any org as Administrators of the operator org; any other
   * org answers not-found, never revealing it exists.
   */
  async delete(auth: Principal, name: string, prune: boolean): Promise<void> {
    if (auth.kind === 'user') {
      const operator = auth.isAdministrator && this.deps.config.operatorOrg === auth.orgName;
      if (!operator) {
        if (auth.orgName !== name) throw notFound('organization', name);
        if (!auth.isAdministrator) {
          throw new AppError('forbidden', 'only Administrators may delete their organization', { permission: 'orgs.delete' });
        }
      }
    }
    const org = await findOrgByName(this.deps.db, name);
    if (!org) throw notFound('organization', name);
    const prepared = prune && this.deps.hooks.prepareOrgPrune ? await this.deps.hooks.prepareOrgPrune(org.id, org.name) : undefined;
    await deleteOrg(this.deps.db, org.id);
    if (prune) await (prepared ? prepared() : this.deps.hooks.pruneOrgFiles(org.name));
  }
}
