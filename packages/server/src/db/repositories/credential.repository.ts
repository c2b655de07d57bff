import type { OrgRow, UserRow } from '../database.js';
import { compiledOnce, type Executor } from './common.js';

/** Sessions, auth tokens and API keys: all stored as SHA-256 hashes of the secret. */

export interface CredentialOwner {
  user: UserRow;
  org: OrgRow;
}

const ownerColumns = [
  'users.id as u_id',
  'users.org_id as u_org_id',
  'users.username as u_username',
  'users.type as u_type',
  'users.email as u_email',
  'users.firstname as u_firstname',
  'users.surname as u_surname',
  'users.title as u_title',
  'users.label as u_label',
  'users.password_hash as u_password_hash',
  'users.disabled as u_disabled',
  'users.created_ms as u_created_ms',
  'users.updated_ms as u_updated_ms',
  'users.last_login_ms as u_last_login_ms',
  'orgs.id as o_id',
  'orgs.name as o_name',
  'orgs.label as o_label',
  'orgs.created_ms as o_created_ms',
  'orgs.updated_ms as o_updated_ms',
] as const;

function owner(r: any): CredentialOwner {
  return {
    user: {
      id: r.u_id, org_id: r.u_org_id, username: r.u_username, type: r.u_type, email: r.u_email, firstname: r.u_firstname,
      surname: r.u_surname, title: r.u_title, label: r.u_label, password_hash: r.u_password_hash, disabled: r.u_disabled,
      created_ms: r.u_created_ms, updated_ms: r.u_updated_ms, last_login_ms: r.u_last_login_ms,
    },
    org: { id: r.o_id, name: r.o_name, label: r.o_label, created_ms: r.o_created_ms, updated_ms: r.o_updated_ms },
  };
}

/** What a request's principal is built from (auth.service principalOf): all the hot credential statements read. */
export interface PrincipalOwner {
  user: Pick<UserRow, 'id' | 'username' | 'type' | 'disabled'>;
  org: Pick<OrgRow, 'id' | 'name'>;
}

const principalColumns = [
  'users.id as u_id',
  'users.username as u_username',
  'users.type as u_type',
  'users.disabled as u_disabled',
  'orgs.id as o_id',
  'orgs.name as o_name',
] as const;

function principalOwner(r: any): PrincipalOwner {
  return { user: { id: r.u_id, username: r.u_username, type: r.u_type, disabled: r.u_disabled }, org: { id: r.o_id, name: r.o_name } };
}

export async function insertSession(
  db: Executor,
  row: { id: string; token_hash: string; user_id: string; created_ms: number; expires_ms: number },
): Promise<void> {
  await db.insertInto('sessions').values({ ...row, revoked: 0 }).execute();
}

export interface SessionLookup extends CredentialOwner {
  sessionId: string;
  expiresMs: number;
  revoked: boolean;
}

export async function findSessionByHash(db: Executor, tokenHash: string): Promise<SessionLookup | undefined> {
  const r = await db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .innerJoin('orgs', 'orgs.id', 'users.org_id')
    .select([...ownerColumns, 'sessions.id as s_id', 'sessions.expires_ms as s_expires_ms', 'sessions.revoked as s_revoked'])
    .where('sessions.token_hash', '=', tokenHash)
    .executeTakeFirst();
  if (!r) return undefined;
  return { ...owner(r), sessionId: r.s_id, expiresMs: Number(r.s_expires_ms), revoked: Number(r.s_revoked) !== 0 };
}

export async function revokeSession(db: Executor, sessionId: string): Promise<void> {
  await db.updateTable('sessions').set({ revoked: 1 }).where('id', '=', sessionId).execute();
}

export async function insertAuthToken(
  db: Executor,
  row: { id: string; token_hash: string; session_id: string; created_ms: number; expires_ms: number },
): Promise<void> {
  await db.insertInto('auth_tokens').values(row).execute();
}

export interface AuthTokenLookup extends PrincipalOwner {
  expiresMs: number;
  /** The session the token was derived from was revoked (logout): the token is revoked too. */
  revoked: boolean;
}

/** A role the credential's owner holds, read in the same statement as the credential (never cached). */
export interface Grant {
  permissions: string;
  builtin: number;
}

/** The owner's roles as read now, with the credential: one row per role (one row with no role for a user without roles). */
export interface WithGrants {
  grants: Grant[];
}

const grantColumns = ['roles.permissions as g_permissions', 'roles.builtin as g_builtin'] as const;

function grantsOf(rows: any[]): Grant[] {
  const out: Grant[] = [];
  for (const r of rows) if (r.g_permissions !== null && r.g_permissions !== undefined) out.push({ permissions: r.g_permissions, builtin: Number(r.g_builtin) });
  return out;
}

const authTokenQuery = compiledOnce<{ tokenHash: string }, Record<string, any>>(['tokenHash'], (db, p) =>
  db
    .selectFrom('auth_tokens')
    .innerJoin('sessions', 'sessions.id', 'auth_tokens.session_id')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .innerJoin('orgs', 'orgs.id', 'users.org_id')
    .leftJoin('user_roles', 'user_roles.user_id', 'users.id')
    .leftJoin('roles', 'roles.id', 'user_roles.role_id')
    .select([...principalColumns, ...grantColumns, 'auth_tokens.expires_ms as t_expires_ms', 'sessions.revoked as s_revoked'])
    .where('auth_tokens.token_hash', '=', p.tokenHash),
);

/**
 * The token, its session, owner, org and the owner's roles, in ONE statement (the hot path of every
 * authenticated request): revocation, expiry, the disabled flag and role changes are all read afresh.
 */
export async function findAuthTokenByHash(db: Executor, tokenHash: string): Promise<(AuthTokenLookup & WithGrants) | undefined> {
  const rows = await authTokenQuery(db, { tokenHash });
  const r = rows[0];
  if (!r) return undefined;
  return { ...principalOwner(r), expiresMs: Number(r.t_expires_ms), revoked: Number(r.s_revoked) !== 0, grants: grantsOf(rows) };
}

/** Deletes expired sessions (their auth tokens cascade). Returns nothing; housekeeping only. */
export async function purgeExpiredSessions(db: Executor, beforeMs: number): Promise<void> {
  await db.deleteFrom('sessions').where('expires_ms', '<', beforeMs).execute();
}

export async function insertApiKey(db: Executor, row: { id: string; user_id: string; key_hash: string; created_ms: number }): Promise<void> {
  await db.insertInto('api_keys').values({ ...row, revoked_ms: null }).execute();
}

/** An API key's owner with its roles, and whether the client address was blocked when the key was read. */
export interface ApiKeyLookup extends PrincipalOwner, WithGrants {
  /** When the address's live credential-failure window ends (ms), if that window has reached its max; else undefined. */
  blockedUntilMs: number | undefined;
}

type ApiKeyParams = { keyHash: string; orgName: string; username: string; throttleKey: string; max: number; nowMs: number };

const apiKeyQuery = compiledOnce<ApiKeyParams, Record<string, any>>(['keyHash', 'orgName', 'username', 'throttleKey', 'max', 'nowMs'], (db, p) =>
  db
    .selectFrom('api_keys')
    .innerJoin('users', 'users.id', 'api_keys.user_id')
    .innerJoin('orgs', 'orgs.id', 'users.org_id')
    .leftJoin('user_roles', 'user_roles.user_id', 'users.id')
    .leftJoin('roles', 'roles.id', 'user_roles.role_id')
    .select(principalColumns)
    .select(grantColumns)
    .select((eb) =>
      eb
        .selectFrom('login_failures')
        .select('login_failures.window_ends_ms')
        .where('login_failures.key', '=', p.throttleKey)
        .where('login_failures.window_ends_ms', '>', p.nowMs)
        .where('login_failures.failures', '>=', p.max)
        .as('blocked_until_ms'),
    )
    .where('api_keys.key_hash', '=', p.keyHash)
    .where('api_keys.revoked_ms', 'is', null)
    .where('orgs.name', '=', p.orgName)
    .where('users.username', '=', p.username),
);

/**
 * The live (unrevoked) key of (org name, username) with this hash, its owner and the owner's roles,
 * plus the client address's throttle window (`throttle`: the hashed key, the max, now), in ONE statement.
 */
export async function findApiKey(
  db: Executor,
  orgName: string,
  username: string,
  keyHash: string,
  throttle: { key: string; max: number; nowMs: number },
): Promise<ApiKeyLookup | undefined> {
  const rows = await apiKeyQuery(db, { keyHash, orgName, username, throttleKey: throttle.key, max: throttle.max, nowMs: throttle.nowMs });
  const r = rows[0];
  if (!r) return undefined;
  const blocked = r.blocked_until_ms;
  return { ...principalOwner(r), grants: grantsOf(rows), blockedUntilMs: blocked === null || blocked === undefined ? undefined : Number(blocked) };
}

/** Key ids are per org: a key of another org is never found. */
export async function findApiKeyInOrg(db: Executor, orgId: string, id: string): Promise<{ id: string; user_id: string; revoked_ms: number | null } | undefined> {
  return db
    .selectFrom('api_keys')
    .innerJoin('users', 'users.id', 'api_keys.user_id')
    .select(['api_keys.id', 'api_keys.user_id', 'api_keys.revoked_ms'])
    .where('api_keys.id', '=', id)
    .where('users.org_id', '=', orgId)
    .executeTakeFirst();
}

export async function revokeApiKey(db: Executor, id: string, nowMs: number): Promise<void> {
  await db.updateTable('api_keys').set({ revoked_ms: nowMs }).where('id', '=', id).execute();
}
