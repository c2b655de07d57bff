import type { Kysely } from 'kysely';
import type { Config } from '../config/config.js';
import type { Database } from '../db/database.js';
import type { BoundRepositories } from '../db/repositories/index.js';
import type { Clock } from '../domain/clock.js';
import { AppError } from '../domain/errors.js';
import { firstUncovered, hasPermission, permissionName, type Action, type Permissions, type Resource } from '../domain/permissions.js';

/** Who is calling; built by the HTTP auth plugin through AuthService, passed to every service method. */
export type Principal = AdminPrincipal | UserPrincipal;

export interface AdminPrincipal {
  kind: 'admin';
}

export interface UserPrincipal {
  kind: 'user';
  orgId: string;
  orgName: string;
  userId: string;
  username: string;
  userType: 'user' | 'machine';
  via: 'token' | 'apikey';
  /** OR over the user's current roles, read on this request. */
  permissions: Permissions;
  /** Holds the org's Administrators role. */
  isAdministrator: boolean;
}

/** Hooks other parts of the server plug in (storage, publishing); no-ops until they exist. */
export interface ServiceHooks {
  /** Deletes every stored and published file of the org (DELETE …/orgs/{name}?prune=true). Must be idempotent. */
  pruneOrgFiles(orgName: string): Promise<void>;
  /**
   * Optional first phase of a prune: called before the org's records are deleted, to capture what
   * cannot be read afterwards (its deployments' settings). The returned function runs once the
   * records are gone, instead of pruneOrgFiles.
   */
  prepareOrgPrune?(orgId: string, orgName: string): Promise<() => Promise<void>>;
}

export interface ServiceDeps {
  db: Kysely<Database>;
  /** Repository functions that depend on the dialect, with its capabilities bound (bindRepositories). */
  repos: BoundRepositories;
  config: Readonly<Config>;
  clock: Clock;
  hooks: ServiceHooks;
}

/** Throws 403 forbidden naming the permission unless the user principal holds it. */
export function requirePermission(auth: Principal, resource: Resource, action: Action): UserPrincipal {
  const user = requireUser(auth);
  if (!hasPermission(user.permissions, resource, action)) {
    throw new AppError('forbidden', `permission ${permissionName(resource, action)} is required`, {
      permission: permissionName(resource, action),
    });
  }
  return user;
}

/**
 * The no-escalation rule (spec §2.3): throws 403 forbidden unless the caller's permission covers
 * every bit of `grant` — the roles handed out, a role's value, a machine user's permission behind a
 * new key, or the permission of a user the caller acts on. `permission` names the first bit missing.
 * `what` says what needed covering (for people).
 */
export function requireCovers(caller: UserPrincipal, grant: Partial<Permissions>, what: string): void {
  const missing = firstUncovered(caller.permissions, grant);
  if (!missing) return;
  const name = permissionName(missing.resource, missing.action);
  throw new AppError('forbidden', `${what} needs ${name}, which the caller does not hold (no escalation)`, { permission: name });
}

/** Backend endpoints are for org users only; the admin token never reaches them (auth plugin), this is the guard. */
export function requireUser(auth: Principal): UserPrincipal {
  if (auth.kind !== 'user') throw new AppError('token-invalid', 'an organization credential is required');
  return auth;
}

export function requireAdmin(auth: Principal): void {
  if (auth.kind !== 'admin') throw new AppError('token-invalid', 'the admin token is required');
}
