import { sql } from 'kysely';
import type { UserRow, UserUpdate } from '../database.js';
import { applyWindow, compiledPerShape, likeContains, likePattern, type Executor, type ListWindow } from './common.js';

export const findUser = (db: Executor, orgId: string, username: string): Promise<UserRow | undefined> =>
  db.selectFrom('users').selectAll().where('org_id', '=', orgId).where('username', '=', username).executeTakeFirst();

export interface UserFilter {
  username?: string;
  type?: 'user' | 'machine';
  role?: string;
}

/** The values of a users-list statement (placeholders while it is compiled; see compiledPerShape). */
interface ListParams extends Record<string, unknown> {
  orgId: string;
  /** likeContains of the lower-cased username filter. */
  pattern: string;
  type: string;
  role: string;
  limit: number;
  offset: number;
}

/** The users of the org matching the filter (no selection yet); which filters apply comes from `f`, their values from `p`. */
function filtered(db: Executor, f: UserFilter, p: ListParams) {
  let base = db.selectFrom('users').where('users.org_id', '=', p.orgId);
  if (f.username) base = base.where(likePattern('users.username', p.pattern));
  if (f.type) base = base.where('users.type', '=', p.type as 'user' | 'machine');
  if (f.role) {
    base = base.where((eb) =>
      eb.exists(
        eb
          .selectFrom('user_roles')
          .innerJoin('roles', 'roles.id', 'user_roles.role_id')
          .select('user_roles.user_id')
          .whereRef('user_roles.user_id', '=', 'users.id')
          .where('roles.name', '=', p.role),
      ),
    );
  }
  return base;
}

/** The columns a user's DTO is built from (services/mappers toUserDto): no row ids, no password hash. */
export const USER_DTO_COLUMNS = [
  'username', 'type', 'email', 'firstname', 'surname', 'title', 'label', 'disabled', 'created_ms', 'updated_ms', 'last_login_ms',
] as const;

export type UserDtoRow = Pick<UserRow, (typeof USER_DTO_COLUMNS)[number]>;

const dtoColumns = USER_DTO_COLUMNS.map((c) => `users.${c}` as const);

/**
 * Role names are NAME_PATTERN names (letters, digits, `_`): a comma never occurs in one, so the
 * names of a user travel as one comma-separated text, sorted by the database as the old join was.
 */
const ROLE_SEPARATOR = ',';

const listStatement = compiledPerShape<ListParams, UserDtoRow & { total_count: number; role_names: string | null }>(
  ['orgId', 'pattern', 'type', 'role', 'limit', 'offset'],
);

/**
 * A page of users with the total and each user's role names (sorted), in ONE statement on the
 * common path: one row per user with only the DTO's columns, the total as a scalar subquery and the
 * role names as a correlated `string_agg` (both dialects). Only a page past the end (no rows,
 * offset > 0) needs a second statement for the total. The statement is compiled once per shape
 * (which filters are present, the order).
 */
export async function listUsersWithRoles(
  db: Executor,
  orgId: string,
  f: UserFilter,
  w: ListWindow,
): Promise<{ total: number; rows: Array<{ user: UserDtoRow; roles: string[] }> }> {
  const values: ListParams = {
    orgId, pattern: likeContains((f.username ?? '').toLowerCase()), type: f.type ?? '', role: f.role ?? '', limit: w.limit, offset: w.offset,
  };
  const shape = `${f.username ? 'u' : ''}${f.type ? 't' : ''}${f.role ? 'r' : ''}|${w.order.map((o) => `${o.column}${o.desc ? '-' : '+'}`).join(',')}`;
  const page = await listStatement(db, shape, (p) =>
    // The total as an uncorrelated scalar subquery: evaluated once, and unlike `count(*) over ()` it lets
    // the page stop after `limit` rows read in index order instead of sorting every user of the org.
    // One row per user (roles aggregated per row): no join rows to sort and regroup, fewer cells to build.
    applyWindow(
      filtered(db, f, p)
        .select(dtoColumns)
        .select(() => filtered(db, f, p).select((eb) => eb.fn.countAll<number>().as('n')).as('total_count'))
        .select((eb) =>
          eb
            .selectFrom('user_roles')
            .innerJoin('roles', 'roles.id', 'user_roles.role_id')
            .whereRef('user_roles.user_id', '=', 'users.id')
            .select(sql<string | null>`string_agg(${sql.ref('roles.name')}, ${sql.lit(ROLE_SEPARATOR)} order by ${sql.ref('roles.name')})`.as('names'))
            .as('role_names'),
        ),
      { order: w.order, limit: p.limit, offset: p.offset },
      'users.username',
    ), values);
  // The row itself serves as the user (its two extra columns are never read by the DTO mapper).
  const rows = page.map((r) => ({ user: r as UserDtoRow, roles: r.role_names === null ? [] : r.role_names.split(ROLE_SEPARATOR) }));
  if (page.length > 0) return { total: Number(page[0]!.total_count), rows };
  if (w.offset === 0) return { total: 0, rows };
  const { total } = await filtered(db, f, values).select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
  return { total: Number(total), rows };
}

/** Role names per user id (sorted), for building DTOs of a page of users in one query. */
export async function roleNamesOfUsers(db: Executor, userIds: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>(userIds.map((id) => [id, []]));
  if (userIds.length === 0) return out;
  const rows = await db
    .selectFrom('user_roles')
    .innerJoin('roles', 'roles.id', 'user_roles.role_id')
    .select(['user_roles.user_id', 'roles.name'])
    .where('user_roles.user_id', 'in', userIds)
    .orderBy('roles.name')
    .execute();
  for (const r of rows) out.get(r.user_id)?.push(r.name);
  return out;
}

export async function insertUser(db: Executor, row: UserRow): Promise<void> {
  await db.insertInto('users').values(row).execute();
}

export async function updateUser(db: Executor, id: string, changes: UserUpdate): Promise<void> {
  await db.updateTable('users').set(changes).where('id', '=', id).execute();
}

export async function deleteUser(db: Executor, id: string): Promise<void> {
  await db.deleteFrom('users').where('id', '=', id).execute();
}

/** Replaces the user's roles with exactly `roleIds`. */
export async function setUserRoles(db: Executor, userId: string, roleIds: string[]): Promise<void> {
  await db.deleteFrom('user_roles').where('user_id', '=', userId).execute();
  if (roleIds.length > 0) {
    await db.insertInto('user_roles').values(roleIds.map((role_id) => ({ user_id: userId, role_id }))).execute();
  }
}

export async function userHasRole(db: Executor, userId: string, roleId: string): Promise<boolean> {
  const r = await db.selectFrom('user_roles').select('user_id').where('user_id', '=', userId).where('role_id', '=', roleId).executeTakeFirst();
  return r !== undefined;
}

export async function countRoleHolders(db: Executor, roleId: string): Promise<number> {
  const { c } = await db
    .selectFrom('user_roles')
    .select((eb) => eb.fn.countAll<number>().as('c'))
    .where('role_id', '=', roleId)
    .executeTakeFirstOrThrow();
  return Number(c);
}
