import { randomUUID } from 'node:crypto';
import type { RoleRow, UserRow, UserUpdate } from '../db/database.js';
import { isUniqueViolation } from '../db/errors.js';
import { insertApiKey } from '../db/repositories/credential.repository.js';
import { findBuiltinRole, findRolesByNames, grantsOfUser } from '../db/repositories/role.repository.js';
import {
  countRoleHolders,
  deleteUser,
  findUser,
  insertUser,
  listUsersWithRoles,
  roleNamesOfUsers,
  setUserRoles,
  updateUser,
  userHasRole,
} from '../db/repositories/user.repository.js';
import type { Executor } from '../db/repositories/common.js';
import { AppError, invalidParam, missingParam, notFound } from '../domain/errors.js';
import { sortableId } from '../domain/ids.js';
import { parseListQuery, project, type Page, type RawListQuery } from '../domain/list.js';
import { hasPermission, isFull, unionPermissions, type Permissions } from '../domain/permissions.js';
import { hashPassword, randomPassword, randomSecret, sha256Hex, verifyPassword } from '../domain/secrets.js';
import { toUnixSeconds } from '../domain/clock.js';
import { requireCovers, requirePermission, requireUser, type Principal, type ServiceDeps, type UserPrincipal } from './context.js';
import type { CreateUserAnswer, CreateUserInput, PatchUserInput, UserDto } from '@rockit/contract';
import { parsePermissions, toUserDto } from './mappers.js';

/** The create answer without its envelope: the user and, once, its initial password (users) or first API key (machines). */
export type CreateUserResult = Omit<CreateUserAnswer, 'status'>;

export interface UserFilterInput {
  username?: string;
  type?: 'user' | 'machine';
  role?: string;
}

const USER_LIST = {
  orderable: ['username', 'type', 'email', 'created', 'updated', 'lastLogin'],
  fields: ['username', 'type', 'email', 'firstname', 'surname', 'title', 'label', 'roles', 'disabled', 'created', 'updated', 'lastLogin'],
  defaultOrder: [{ field: 'username', desc: false }],
} as const;
const USER_COLUMNS: Record<string, string> = {
  username: 'users.username', type: 'users.type', email: 'users.email', created: 'users.created_ms',
  updated: 'users.updated_ms', lastLogin: 'users.last_login_ms',
};

/** Passwords chosen by people: 8..256 characters (generated ones are 24). */
function checkPassword(param: string, pw: string): void {
  if (pw.length < 8 || pw.length > 256) throw invalidParam(param, 'must be 8 to 256 characters long');
}

/** Creates an API key for a machine user; returns the one-time secret. */
export async function createApiKeyRow(db: Executor, userId: string, nowMs: number): Promise<{ id: string; key: string; created: number }> {
  const id = 'k_' + sortableId(nowMs);
  const key = randomSecret('rkk_');
  await insertApiKey(db, { id, user_id: userId, key_hash: sha256Hex(key), created_ms: nowMs });
  return { id, key, created: toUnixSeconds(nowMs) };
}

/** A user's permission now: the OR over its roles (spec §2.3). */
export async function permissionsOfUser(db: Executor, userId: string): Promise<Permissions> {
  return unionPermissions((await grantsOfUser(db, userId)).map((g) => parsePermissions(g.permissions)));
}

/** The OR over these roles: what holding all of them grants. */
const grantOf = (roles: RoleRow[]): Permissions => unionPermissions(roles.map((r) => parsePermissions(r.permissions)));

/** Users and machine users of the caller's org (`beUsers`, named `users.*`). */
export class UserService {
  constructor(private readonly deps: ServiceDeps) {}

  async list(auth: Principal, filter: UserFilterInput, raw: RawListQuery): Promise<Page<UserDto>> {
    const user = requirePermission(auth, 'beUsers', 'read');
    const q = parseListQuery(raw, USER_LIST);
    const { total, rows } = await listUsersWithRoles(this.deps.db, user.orgId, filter, {
      offset: q.offset, limit: q.limit, order: q.order.map((o) => ({ column: USER_COLUMNS[o.field], desc: o.desc })),
    });
    return { total, offset: q.offset, limit: q.limit, items: rows.map((r) => project(toUserDto(r.user, r.roles), q.fields)) };
  }

  /** Needs users.read, except for the caller's own account. */
  async get(auth: Principal, username: string): Promise<UserDto> {
    const caller = requireUser(auth);
    if (caller.username !== username) requirePermission(auth, 'beUsers', 'read');
    const row = await findUser(this.deps.db, caller.orgId, username);
    if (!row) throw notFound('user', username);
    return this.dto(row);
  }

  /**
   * The kind: explicit `type`, else `email` ⇒ user, `label` without `email` ⇒ machine.
   * Errors: missing-param / invalid-param for fields of the kind; invalid-param `roles` for an
   * unknown role; already-exists for a taken username.
   */
  async create(auth: Principal, input: CreateUserInput): Promise<CreateUserResult> {
    const caller = requirePermission(auth, 'beUsers', 'create');
    const type = input.type ?? (input.email !== undefined ? 'user' : input.label !== undefined ? 'machine' : undefined);
    if (!type) throw missingParam('email');
    if (type === 'user') {
      for (const f of ['email', 'firstname', 'surname'] as const) if (input[f] === undefined) throw missingParam(f);
    } else {
      if (input.label === undefined) throw missingParam('label');
      for (const f of ['email', 'firstname', 'surname', 'title'] as const) {
        if (input[f] !== undefined) throw invalidParam(f, 'is not a field of machine users');
      }
    }
    const { db, clock, config } = this.deps;
    const roles = await this.resolveRoles(db, caller.orgId, input.roles);
    // No escalation (spec §2.3): the roles handed out, and so the machine user's first API key,
    // grant nothing the caller lacks. roles.update is not needed to create (§5 asks it of PATCH only).
    requireCovers(caller, grantOf(roles), 'granting these roles');
    const now = clock.now();
    const password = type === 'user' ? randomPassword() : undefined;
    const row: UserRow = {
      id: randomUUID(), org_id: caller.orgId, username: input.username, type,
      email: input.email ?? null, firstname: input.firstname ?? null, surname: input.surname ?? null, title: input.title ?? null,
      label: input.label ?? null, password_hash: password ? await hashPassword(password, config.scryptCost) : null,
      disabled: 0, created_ms: now, updated_ms: now, last_login_ms: null,
    };
    let apiKey: { id: string; key: string } | undefined;
    try {
      await db.transaction().execute(async (trx) => {
        await insertUser(trx, row);
        await setUserRoles(trx, row.id, roles.map((r) => r.id));
        if (type === 'machine') {
          const k = await createApiKeyRow(trx, row.id, now);
          apiKey = { id: k.id, key: k.key };
        }
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw new AppError('already-exists', `user '${input.username}' already exists`, { param: 'username' });
      throw e;
    }
    const user = toUserDto(row, roles.map((r) => r.name).sort());
    return type === 'user' ? { user, password } : { user, apiKey };
  }

  /**
   * Patches the caller (default) or, with users.update, another user. Own password: oldPW + newPW.
   * Another's: resetCreds, needing users.update and full beUsers. `roles` needs roles.update too;
   * the last holder of Administrators can neither lose it nor be disabled (409 in-use).
   * No escalation (403 forbidden): the new roles, and for another user its current permission,
   * must be covered by the caller's permission.
   */
  async patch(auth: Principal, input: PatchUserInput): Promise<UserDto> {
    const caller = requireUser(auth);
    const targetName = input.username ?? caller.username;
    const self = targetName === caller.username;
    if (!self) requirePermission(auth, 'beUsers', 'update');
    if (input.roles !== undefined) requirePermission(auth, 'roles', 'update');
    if (input.resetCreds !== undefined && !(hasPermission(caller.permissions, 'beUsers', 'update') && isFull(caller.permissions, 'beUsers'))) {
      throw new AppError('forbidden', 'resetting credentials needs every beUsers permission', { permission: 'users.update' });
    }
    const { db, clock, config } = this.deps;
    const target = await findUser(db, caller.orgId, targetName);
    if (!target) throw notFound('user', targetName);
    // No escalation (spec §2.3): acting on another user (its roles, its password, disabling it)
    // needs at least that user's permission, or a beUsers manager could take over an administrator.
    if (!self) requireCovers(caller, await permissionsOfUser(db, target.id), `changing user '${targetName}'`);

    const changes: UserUpdate = {};
    if (target.type === 'machine') {
      for (const f of ['email', 'firstname', 'surname', 'title', 'oldPW', 'newPW', 'resetCreds'] as const) {
        if (input[f] !== undefined) throw invalidParam(f, 'is not a field of machine users');
      }
    }
    for (const f of ['email', 'firstname', 'surname', 'label'] as const) if (input[f] !== undefined) changes[f] = input[f];
    if (input.title !== undefined) changes.title = input.title;
    if (input.disabled !== undefined) changes.disabled = input.disabled ? 1 : 0;

    if (input.newPW !== undefined || input.oldPW !== undefined) {
      if (!self) throw invalidParam('newPW', "sets the caller's own password; use resetCreds for another user");
      if (input.oldPW === undefined) throw missingParam('oldPW');
      if (input.newPW === undefined) throw missingParam('newPW');
      checkPassword('newPW', input.newPW);
      if (!target.password_hash || !(await verifyPassword(input.oldPW, target.password_hash))) {
        throw invalidParam('oldPW', 'does not match the current password');
      }
      changes.password_hash = await hashPassword(input.newPW, config.scryptCost);
    }
    if (input.resetCreds !== undefined) {
      checkPassword('resetCreds', input.resetCreds);
      changes.password_hash = await hashPassword(input.resetCreds, config.scryptCost);
    }

    await db.transaction().execute(async (trx) => {
      const admins = await findBuiltinRole(trx, caller.orgId);
      if (admins) await this.deps.repos.lockRole(trx, admins.id);
      const isAdmin = admins ? await userHasRole(trx, target.id, admins.id) : false;
      let roles: RoleRow[] | undefined;
      if (input.roles !== undefined) {
        roles = await this.resolveRoles(trx, caller.orgId, input.roles);
        requireCovers(caller, grantOf(roles), 'granting these roles');
      }
      const losesAdmin = isAdmin && roles !== undefined && !roles.some((r) => r.id === admins!.id);
      const disables = isAdmin && input.disabled === true;
      if ((losesAdmin || disables) && (await countRoleHolders(trx, admins!.id)) <= 1) {
        throw new AppError('in-use', 'the last Administrators member cannot lose the role or be disabled');
      }
      changes.updated_ms = clock.now();
      await updateUser(trx, target.id, changes);
      if (roles) await setUserRoles(trx, target.id, roles.map((r) => r.id));
    });
    const row = await findUser(db, caller.orgId, targetName);
    return this.dto(row!);
  }

  /**
   * Deletes the user; sessions, auth tokens and API keys go with it (cascade), so they stop working at once.
   * Another user's permission must be covered by the caller's (403 forbidden otherwise).
   */
  async delete(auth: Principal, username: string): Promise<void> {
    const caller = requirePermission(auth, 'beUsers', 'delete');
    await this.deps.db.transaction().execute(async (trx) => {
      const target = await findUser(trx, caller.orgId, username);
      if (!target) throw notFound('user', username);
      if (target.id !== caller.userId) requireCovers(caller, await permissionsOfUser(trx, target.id), `deleting user '${username}'`);
      const admins = await findBuiltinRole(trx, caller.orgId);
      if (admins) await this.deps.repos.lockRole(trx, admins.id);
      if (admins && (await userHasRole(trx, target.id, admins.id)) && (await countRoleHolders(trx, admins.id)) <= 1) {
        throw new AppError('in-use', 'the last Administrators member cannot be deleted');
      }
      await deleteUser(trx, target.id);
    });
  }

  private async dto(row: UserRow): Promise<UserDto> {
    const roles = await roleNamesOfUsers(this.deps.db, [row.id]);
    return toUserDto(row, roles.get(row.id) ?? []);
  }

  private async resolveRoles(db: Executor, orgId: string, names: string[]): Promise<RoleRow[]> {
    const unique = [...new Set(names)];
    const roles = await findRolesByNames(db, orgId, unique);
    if (roles.length !== unique.length) {
      const missing = unique.find((n) => !roles.some((r) => r.name === n));
      throw invalidParam('roles', `names an unknown role '${missing}'`);
    }
    return roles;
  }
}

export type { UserPrincipal };
