import type { DbCapabilities } from '../capabilities.js';
import type { RoleRow } from '../database.js';
import { applyWindow, contains, type Executor, type ListWindow } from './common.js';

export type RoleWithCount = RoleRow & { users: number };

const withCount = (db: Executor) =>
  db
    .selectFrom('roles')
    .selectAll('roles')
    .select((eb) =>
      eb
        .selectFrom('user_roles')
        .select((e) => e.fn.countAll<number>().as('c'))
        .whereRef('user_roles.role_id', '=', 'roles.id')
        .as('users'),
    );

const norm = (r: any): RoleWithCount => ({ ...r, users: Number(r.users ?? 0) });

export async function findRole(db: Executor, orgId: string, name: string): Promise<RoleWithCount | undefined> {
  const r = await withCount(db).where('org_id', '=', orgId).where('name', '=', name).executeTakeFirst();
  return r ? norm(r) : undefined;
}

export const findRolesByNames = (db: Executor, orgId: string, names: string[]): Promise<RoleRow[]> =>
  names.length === 0
    ? Promise.resolve([])
    : db.selectFrom('roles').selectAll().where('org_id', '=', orgId).where('name', 'in', names).execute();

export const findBuiltinRole = (db: Executor, orgId: string): Promise<RoleRow | undefined> =>
  db.selectFrom('roles').selectAll().where('org_id', '=', orgId).where('builtin', '=', 1).executeTakeFirst();

export async function listRoles(
  db: Executor,
  orgId: string,
  filter: { name?: string },
  w: ListWindow,
): Promise<{ total: number; rows: RoleWithCount[] }> {
  let base = db.selectFrom('roles').where('org_id', '=', orgId);
  if (filter.name) base = base.where(contains('name', filter.name));
  const { total } = await base.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
  let q = withCount(db).where('org_id', '=', orgId);
  if (filter.name) q = q.where(contains('name', filter.name));
  const rows = await applyWindow(q, w, 'roles.name').execute();
  return { total: Number(total), rows: rows.map(norm) };
}

export async function insertRole(db: Executor, row: RoleRow): Promise<void> {
  await db.insertInto('roles').values(row).execute();
}

export async function updateRole(db: Executor, id: string, changes: Partial<Pick<RoleRow, 'label' | 'permissions' | 'updated_ms'>>): Promise<void> {
  await db.updateTable('roles').set(changes).where('id', '=', id).execute();
}

export async function deleteRole(db: Executor, id: string): Promise<void> {
  await db.deleteFrom('roles').where('id', '=', id).execute();
}

/** The permission JSON and builtin flag of every role the user holds (evaluated per request). */
export async function grantsOfUser(db: Executor, userId: string): Promise<Array<{ permissions: string; builtin: number }>> {
  return db
    .selectFrom('user_roles')
    .innerJoin('roles', 'roles.id', 'user_roles.role_id')
    .select(['roles.permissions', 'roles.builtin'])
    .where('user_roles.user_id', '=', userId)
    .execute();
}

/**
 * Locks the role row until the transaction ends, so checks over its holders ("the last
 * Administrators member") cannot interleave with another transaction doing the same.
 */
export async function lockRole(trx: Executor, caps: DbCapabilities, roleId: string): Promise<void> {
  if (!caps.rowLocks) return;
  await trx.selectFrom('roles').select('id').where('id', '=', roleId).forUpdate().execute();
}
