import { randomUUID } from 'node:crypto';
import {
  findApiKey,
  findAuthTokenByHash,
  findSessionByHash,
  insertAuthToken,
  insertSession,
  revokeSession,
  type PrincipalOwner,
} from '../db/repositories/credential.repository.js';
import { findOrgByName } from '../db/repositories/org.repository.js';
import { grantsOfUser } from '../db/repositories/role.repository.js';
import { findUser, roleNamesOfUsers, updateUser } from '../db/repositories/user.repository.js';
import { toUnixSeconds } from '../domain/clock.js';
import { AppError } from '../domain/errors.js';
import { constantTimeEqual, hashPassword, randomSecret, sha256Hex, verifyPassword } from '../domain/secrets.js';
import { LoginThrottle, keyOf, waitSeconds, type ThrottleRule } from './login-throttle.js';
import type { AdminPrincipal, ServiceDeps, UserPrincipal } from './context.js';
import type { LoginAnswer, LoginInput } from '@rockit/contract';
import { toUserDto, unionOfStored } from './mappers.js';

/** The login answer without its envelope. */
export type LoginResult = Omit<LoginAnswer, 'status'>;

/** Verifies the admin token: either the configured one, or the hash stored at first start. */
export interface AdminTokenVerifier {
  verify(token: string): boolean;
}

export const configuredAdminToken = (token: string): AdminTokenVerifier => ({ verify: (t) => constantTimeEqual(t, token) });
export const hashedAdminToken = (sha256: string): AdminTokenVerifier => ({ verify: (t) => constantTimeEqual(sha256Hex(t), sha256) });

const invalidCredentials = () => new AppError('invalid-credentials', 'organization, username or password is wrong');
const rateLimited = (retryAfterSeconds: number, message: string) => new AppError('rate-limited', message, { retryAfterSeconds });
const tokenInvalid = (what: string) => new AppError('token-invalid', `${what} is invalid or revoked`);

/**
 * Login, sessions, auth tokens, API keys and the admin token. Tokens and keys are random and
 * stored hashed; every lookup checks revocation, expiry (with the injected clock), the account's
 * disabled flag, and reads the user's roles afresh (a role change applies on the next request).
 */
export class AuthService {
  /** Login attempts and credential failures, counted in the database so that every API node sees them. */
  private readonly throttle: LoginThrottle;
  private readonly perUserAddress: ThrottleRule;
  private readonly perUser: ThrottleRule;
  private readonly perAddress: ThrottleRule;
  private readonly credentialPerAddress: ThrottleRule;
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly deps: ServiceDeps,
    private readonly adminToken: AdminTokenVerifier,
  ) {
    const { login } = deps.config;
    this.throttle = new LoginThrottle(deps.db, deps.clock);
    this.perUserAddress = { kind: 'user-address', max: login.maxFailuresPerUserAddress, windowSeconds: login.windowSeconds };
    this.perUser = { kind: 'user', max: login.maxFailuresPerUser, windowSeconds: login.windowSeconds };
    this.perAddress = { kind: 'address', max: login.maxFailuresPerAddress, windowSeconds: login.windowSeconds };
    this.credentialPerAddress = { kind: 'credential', max: login.maxCredentialFailuresPerAddress, windowSeconds: login.windowSeconds };
  }

  /**
   * Errors: rate-limited when this address failed too often with admin tokens or API keys;
   * token-invalid for a wrong token (counted against the address).
   */
  async authenticateAdmin(token: string, clientAddress: string): Promise<AdminPrincipal> {
    await this.refuseBlockedAddress(clientAddress);
    if (!this.adminToken.verify(token)) throw await this.credentialFailure(clientAddress, tokenInvalid('the admin token'));
    return { kind: 'admin' };
  }

  /**
   * Errors: rate-limited (429, with retryAfterSeconds) when the (org, username) pair from this address,
   * the address, or (at a much higher bound) the account had too many attempts; invalid-credentials
   * (same answer for unknown org, unknown user, machine user and wrong password); account-disabled
   * only after the password was right.
   *
   * The attempt is counted before the password is checked, atomically per key, so parallel attempts
   * cannot all pass a check made before any of them is recorded; a successful attempt is taken back.
   * Per (account, address) first: an attacker hammering from one address locks out that pair, not the
   * real user logging in from elsewhere.
   */
  async login(input: LoginInput, clientAddress: string): Promise<LoginResult> {
    const userKey = `${input.orgName}\u0000${input.username}`;
    const pairKey = `${userKey}\u0000${clientAddress}`;
    const wait = await this.throttle.countAttempt([[this.perAddress, clientAddress], [this.perUserAddress, pairKey], [this.perUser, userKey]]);
    if (wait > 0) throw rateLimited(wait, 'too many failed login attempts; try again later');
    const { db, clock, config } = this.deps;
    const org = await findOrgByName(db, input.orgName);
    const user = org ? await findUser(db, org.id, input.username) : undefined;
    // Spend the same scrypt work whether or not the user exists, so timing does not reveal names.
    const hash = user?.type === 'user' && user.password_hash ? user.password_hash : await this.getDummyHash();
    const ok = (await verifyPassword(input.password, hash)) && user !== undefined && user.type === 'user';
    if (!ok || !org || !user) throw invalidCredentials();
    // The right password: not a failure. The pair starts afresh; the wider counts forget this attempt.
    await this.throttle.reset(this.perUserAddress, pairKey);
    await this.throttle.uncount(this.perAddress, clientAddress);
    await this.throttle.uncount(this.perUser, userKey);
    if (Number(user.disabled) !== 0) throw new AppError('account-disabled', 'the account is disabled');

    const now = clock.now();
    const token = randomSecret('rks_');
    const expiresMs = now + config.sessionSeconds * 1000;
    await db.transaction().execute(async (trx) => {
      await insertSession(trx, { id: randomUUID(), token_hash: sha256Hex(token), user_id: user.id, created_ms: now, expires_ms: expiresMs });
      await updateUser(trx, user.id, { last_login_ms: now });
    });
    const roles = (await roleNamesOfUsers(db, [user.id])).get(user.id) ?? [];
    const principal = await this.principalOf({ user, org }, 'token');
    return {
      session: { token, expires: toUnixSeconds(expiresMs) },
      user: toUserDto({ ...user, last_login_ms: now }, roles),
      permissions: principal.permissions,
    };
  }

  /** Exchanges a live session token for a short auth token (expiring no later than the session). */
  async issueAuthToken(sessionToken: string): Promise<{ token: string; expires: number }> {
    const { db, clock, config } = this.deps;
    const s = await findSessionByHash(db, sha256Hex(sessionToken));
    if (!s || s.revoked) throw tokenInvalid('the session token');
    const now = clock.now();
    if (s.expiresMs <= now) throw new AppError('token-expired', 'the session token has expired; log in again');
    if (Number(s.user.disabled) !== 0) throw new AppError('account-disabled', 'the account is disabled');
    const token = randomSecret('rka_');
    const expiresMs = Math.min(now + config.authSeconds * 1000, s.expiresMs);
    await insertAuthToken(db, { id: randomUUID(), token_hash: sha256Hex(token), session_id: s.sessionId, created_ms: now, expires_ms: expiresMs });
    return { token, expires: toUnixSeconds(expiresMs) };
  }

  /** Revokes the session and, through it, every auth token derived from it. An expired session may still log out. */
  async logout(sessionToken: string): Promise<void> {
    const s = await findSessionByHash(this.deps.db, sha256Hex(sessionToken));
    if (!s || s.revoked) throw tokenInvalid('the session token');
    await revokeSession(this.deps.db, s.sessionId);
  }

  async authenticateAuthToken(token: string): Promise<UserPrincipal> {
    const t = await findAuthTokenByHash(this.deps.db, sha256Hex(token));
    if (!t || t.revoked) throw tokenInvalid('the auth token');
    if (t.expiresMs <= this.deps.clock.now()) throw new AppError('token-expired', 'the auth token has expired');
    return this.principalOf(t, 'token', t.grants);
  }

  /**
   * API keys authenticate machine users only. Errors: rate-limited when this address failed too often
   * with admin tokens or API keys; token-invalid for an unknown key (counted against the address).
   * The common success path is one statement: the key, its owner, the owner's roles and the address's
   * throttle window are read together (a blocked address is refused even with a right key, as before).
   */
  async authenticateApiKey(orgName: string, username: string, key: string, clientAddress: string): Promise<UserPrincipal> {
    const now = this.deps.clock.now();
    const rule = this.credentialPerAddress;
    const owner = await findApiKey(this.deps.db, orgName, username, sha256Hex(key), { key: keyOf(rule, clientAddress), max: rule.max, nowMs: now });
    if (owner?.blockedUntilMs !== undefined) throw rateLimited(waitSeconds(owner.blockedUntilMs, now), 'too many failed credentials from this address; try again later');
    if (!owner || owner.user.type !== 'machine') {
      await this.refuseBlockedAddress(clientAddress);
      throw await this.credentialFailure(clientAddress, tokenInvalid('the API key'));
    }
    return this.principalOf(owner, 'apikey', owner.grants);
  }

  /**
   * Admin tokens and API keys are random and long (32+ characters), so guessing them is throttled per
   * client address only: a read before the check (one indexed lookup, no write on the common success
   * path) and an atomic count after a failure. Concurrent guesses from one address can pass the read
   * together — at most the concurrency's worth of extra guesses, nothing against 2^128 candidates.
   */
  private async refuseBlockedAddress(clientAddress: string): Promise<void> {
    const wait = await this.throttle.retryAfterSeconds([[this.credentialPerAddress, clientAddress]]);
    if (wait > 0) throw rateLimited(wait, 'too many failed credentials from this address; try again later');
  }

  /** Counts a failed admin token or API key; the error to throw (rate-limited once over the max). */
  private async credentialFailure(clientAddress: string, error: AppError): Promise<AppError> {
    const wait = await this.throttle.recordFailure(this.credentialPerAddress, clientAddress);
    return wait > 0 ? rateLimited(wait, 'too many failed credentials from this address; try again later') : error;
  }

  /** `grants`: the owner's roles when the credential's statement already read them; otherwise read now. */
  private async principalOf(
    owner: PrincipalOwner,
    via: 'token' | 'apikey',
    known?: Array<{ permissions: string; builtin: number }>,
  ): Promise<UserPrincipal> {
    if (Number(owner.user.disabled) !== 0) throw new AppError('account-disabled', 'the account is disabled');
    const grants = known ?? (await grantsOfUser(this.deps.db, owner.user.id));
    return {
      kind: 'user',
      orgId: owner.org.id,
      orgName: owner.org.name,
      userId: owner.user.id,
      username: owner.user.username,
      userType: owner.user.type,
      via,
      permissions: unionOfStored(grants),
      isAdministrator: grants.some((g) => Number(g.builtin) === 1),
    };
  }

  private getDummyHash(): Promise<string> {
    this.dummyHash ??= hashPassword(randomSecret(''), this.deps.config.scryptCost);
    return this.dummyHash;
  }
}
