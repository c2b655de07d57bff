import { randomUUID } from 'node:crypto';
import { isUniqueViolation } from '../db/errors.js';
import { deleteRole, findRole, insertRole, listRoles, updateRole } from '../db/repositories/role.repository.js';
import { AppError, notFound } from '../domain/errors.js';
import { parseListQuery, project, type Page, type RawListQuery } from '../domain/list.js';
import { noPermissions, unionPermissions, validatePermissions } from '../domain/permissions.js';
import { requireCovers, requirePermission, type Principal, type ServiceDeps } from './context.js';
import type { CreateRoleInput, PatchRoleInput, RoleDto } from '@rockit/contract';
import { parsePermissions, toRoleDto } from './mappers.js';

const ROLE_LIST = {
  orderable: ['name', 'label', 'created', 'updated', 'users'],
  fields: ['name', 'label', 'permissions', 'users', 'created', 'updated'],
  defaultOrder: [{ field: 'name', desc: false }],
} as const;
const ROLE_COLUMNS: Record<string, string> = {
  name: 'roles.name', label: 'roles.label', created: 'roles.created_ms', updated: 'roles.updated_ms', users: 'users',
};

const immutable = () => new AppError('in-use', 'the Administrators role cannot be changed or deleted');

/** Roles of the caller's org (`roles` permission). The builtin Administrators role is immutable. */
export class RoleService {
  constructor(private readonly deps: ServiceDeps) {}

  async list(auth: Principal, filter: { name?: string }, raw: RawListQuery): Promise<Page<RoleDto>> {
    const user = requirePermission(auth, 'roles', 'read');
    const q = parseListQuery(raw, ROLE_LIST);
    const { total, rows } = await listRoles(this.deps.db, user.orgId, filter, {
      offset: q.offset, limit: q.limit, order: q.order.map((o) => ({ column: ROLE_COLUMNS[o.field], desc: o.desc })),
    });
    return { total, offset: q.offset, limit: q.limit, items: rows.map((r) => project(toRoleDto(r), q.fields)) };
  }

  async get(auth: Principal, name: string): Promise<RoleDto> {
    const user = requirePermission(auth, 'roles', 'read');
    const role = await findRole(this.deps.db, user.orgId, name);
    if (!role) throw notFound('role', name);
    return toRoleDto(role);
  }

  /**
   * Errors: invalid-param for a bit the resource lacks; forbidden for a bit the caller lacks (no
   * escalation, spec §2.3); already-exists for a taken name.
   */
  async create(auth: Principal, input: CreateRoleInput): Promise<RoleDto> {
    const user = requirePermission(auth, 'roles', 'create');
    const permissions = { ...noPermissions(), ...validatePermissions(input.permissions) };
    requireCovers(user, permissions, 'a role with these permissions');
    const now = this.deps.clock.now();
    const row = {
      id: randomUUID(), org_id: user.orgId, name: input.name, label: input.label ?? input.name,
      permissions: JSON.stringify(permissions), builtin: 0, created_ms: now, updated_ms: now,
    };
    try {
      await insertRole(this.deps.db, row);
    } catch (e) {
      if (isUniqueViolation(e)) throw new AppError('already-exists', `role '${input.name}' already exists`, { param: 'name' });
      throw e;
    }
    return toRoleDto({ ...row, users: 0 });
  }

  /**
   * Resources missing from `permissions` keep their value. The Administrators role answers 409 in-use.
   * No escalation (403 forbidden): the caller must cover the role's new value, and its old one too
   * (taking bits away from the role's holders is as much beyond the caller as handing them out).
   */
  async patch(auth: Principal, input: PatchRoleInput): Promise<RoleDto> {
    const user = requirePermission(auth, 'roles', 'update');
    const changes = input.permissions ? validatePermissions(input.permissions) : {};
    const role = await findRole(this.deps.db, user.orgId, input.name);
    if (!role) throw notFound('role', input.name);
    if (Number(role.builtin) === 1) throw immutable();
    const before = parsePermissions(role.permissions);
    const permissions = { ...before, ...changes };
    requireCovers(user, unionPermissions([before, permissions]), `changing role '${input.name}'`);
    const now = this.deps.clock.now();
    const update = { label: input.label ?? role.label, permissions: JSON.stringify(permissions), updated_ms: now };
    await updateRole(this.deps.db, role.id, update);
    return toRoleDto({ ...role, ...update });
  }

  /** Errors: in-use while users hold the role, and always for Administrators. */
  async delete(auth: Principal, name: string): Promise<void> {
    const user = requirePermission(auth, 'roles', 'delete');
    await this.deps.db.transaction().execute(async (trx) => {
      const found = await findRole(trx, user.orgId, name);
      if (!found) throw notFound('role', name);
      if (Number(found.builtin) === 1) throw immutable();
      await this.deps.repos.lockRole(trx, found.id);
      const role = (await findRole(trx, user.orgId, name))!;
      if (role.users > 0) throw new AppError('in-use', `role '${name}' is held by ${role.users} user(s)`);
      await deleteRole(trx, role.id);
    });
  }
}
