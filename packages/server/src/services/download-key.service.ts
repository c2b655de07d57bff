import type { ClientAuthAnswer, ClientAuthInput, CreateDownloadKeyInput, CreatedDownloadKeyDto, DownloadKeyDto } from '@rockit/contract';
import { findApp, findAppById, findAppWithOrg, lockApp, targetDeploymentsOfApp } from '../db/repositories/app.repository.js';
import {
  countDownloadKeysOfApp,
  deleteDownloadKey,
  findDownloadKey,
  findDownloadKeyByHash,
  hasDownloadKeysIgnoringCase,
  insertDownloadKey,
  pageDownloadKeys,
  touchDownloadKey,
} from '../db/repositories/download-key.repository.js';
import type { DownloadKeyRow } from '../db/faststart-tables.js';
import { toUnixSeconds } from '../domain/clock.js';
import { appAcl, signDownloadToken, verifyDownloadToken, type TokenCheck } from '../domain/download-token.js';
import { AppError, notFound } from '../domain/errors.js';
import { sortableId } from '../domain/ids.js';
import { parseListQuery, project, type Page, type RawListQuery } from '../domain/list.js';
import type { SecretBox } from '../domain/secret-box.js';
import { constantTimeEqual, randomSecret, sha256Hex } from '../domain/secrets.js';
import { releaseKey } from '../publish/layout.js';
import type { BlobStore } from '../storage/blob-store.js';
import { isStorageError } from '../storage/storage-error.js';
import { requirePermission, type Principal, type ServiceDeps } from './context.js';
import { openDownloadAuthKey } from './deployment.service.js';
import { LoginThrottle, type ThrottleRule } from './login-throttle.js';

/** `POST /client/v1/auth` without its envelope: the download token, the release (null while nothing is published), origin tokens. */
export type ClientAuthResult = Omit<ClientAuthAnswer, 'status'>;

/** Who a download token or access key lets in: one app of one org. */
export interface ClientIdentity {
  orgId: string;
  orgName: string;
  appId: string;
  appName: string;
}

/** Most keys per app (a client fleet needs a few for rotation, not thousands). */
export const MAX_KEYS_PER_APP = 20;
const KEY_LIST = {
  orderable: ['created', 'label', 'appName', 'lastUsed'],
  fields: ['id', 'appName', 'label', 'created', 'lastUsed'],
  defaultOrder: [{ field: 'created', desc: false }],
} as const;
const KEY_COLUMNS: Record<string, string> = {
  created: 'download_keys.created_ms', label: 'download_keys.label', appName: 'apps.name', lastUsed: 'download_keys.last_used_ms',
};

const clientCredentialsWrong = (): AppError => new AppError('invalid-credentials', 'organization, app or key is wrong');
const forbiddenDownload = (why: string): AppError => new AppError('forbidden', why);

export interface DownloadKeyServiceOptions {
  secrets: SecretBox;
  /** The depot (blob store under its prefix): release.json is read from it. */
  depot: BlobStore;
  /** Hex key signing depot tokens (derived from the installation key). */
  depotTokenKey: string;
}

/**
 * Download keys (`/be/v1/keys`, permission resource `keys`), the client's exchange of a key for a
 * download token (`POST /client/v1/auth`) and the depot's token check for apps that have keys.
 */
export class DownloadKeyService {
  private readonly throttle: LoginThrottle;
  private readonly perAddress: ThrottleRule;

  constructor(
    private readonly deps: ServiceDeps,
    private readonly opts: DownloadKeyServiceOptions,
  ) {
    this.throttle = new LoginThrottle(deps.db, deps.clock);
    // Per client address only: a per-app rule would let anyone lock every player of an app out.
    this.perAddress = { kind: 'download-key-address', max: deps.config.login.maxFailuresPerAddress, windowSeconds: deps.config.login.windowSeconds };
  }

  async create(auth: Principal, input: CreateDownloadKeyInput): Promise<CreatedDownloadKeyDto> {
    const user = requirePermission(auth, 'keys', 'create');
    const { db, clock } = this.deps;
    const key = randomSecret('rkdk_');
    const row = await db.transaction().execute(async (trx) => {
      const app = await findApp(trx, user.orgId, input.appName);
      if (!app) throw notFound('app', input.appName);
      // Two creates at once must not both pass the count (no-op without row locks: SQLite serializes writers).
      await lockApp(trx, this.deps.capabilities, app.id);
      if ((await countDownloadKeysOfApp(trx, app.id)) >= MAX_KEYS_PER_APP) {
        throw new AppError('invalid-state', `app '${input.appName}' already has ${MAX_KEYS_PER_APP} download keys; delete one first`);
      }
      const r: DownloadKeyRow = {
        id: `dk_${sortableId(clock.now())}`, org_id: user.orgId, app_id: app.id, label: input.label ?? '',
        key_hash: sha256Hex(key), created_ms: clock.now(), last_used_ms: null,
      };
      await insertDownloadKey(trx, r);
      return r;
    });
    return { ...toDto(row, input.appName), key };
  }

  async list(auth: Principal, filter: { appName?: string }, raw: RawListQuery): Promise<Page<DownloadKeyDto>> {
    const user = requirePermission(auth, 'keys', 'read');
    const q = parseListQuery(raw, KEY_LIST);
    const { db } = this.deps;
    let appId: string | undefined;
    if (filter.appName !== undefined) {
      const app = await findApp(db, user.orgId, filter.appName);
      if (!app) return { total: 0, offset: q.offset, limit: q.limit, items: [] };
      appId = app.id;
    }
    const { total, rows } = await pageDownloadKeys(db, user.orgId, appId, {
      offset: q.offset, limit: q.limit, order: q.order.map((o) => ({ column: KEY_COLUMNS[o.field], desc: o.desc })),
    });
    return { total, offset: q.offset, limit: q.limit, items: rows.map((r) => project(toDto(r, r.app_name), q.fields)) };
  }

  async get(auth: Principal, id: string): Promise<DownloadKeyDto> {
    const user = requirePermission(auth, 'keys', 'read');
    const row = await findDownloadKey(this.deps.db, user.orgId, id);
    if (!row) throw notFound('key', id);
    const app = await findAppById(this.deps.db, row.app_id);
    return toDto(row, app?.name ?? '');
  }

  async delete(auth: Principal, id: string): Promise<void> {
    const user = requirePermission(auth, 'keys', 'delete');
    if (!(await deleteDownloadKey(this.deps.db, user.orgId, id))) throw notFound('key', id);
  }

  /**
   * The client's exchange (POST /client/v1/auth): one identical `401 invalid-credentials` for an
   * unknown org, app or key and for a key of another app (no oracle); failures are throttled per
   * client address like logins (429 rate-limited).
   */
  async clientAuth(input: ClientAuthInput, clientAddress: string): Promise<ClientAuthResult> {
    const wait = await this.throttle.retryAfterSeconds([[this.perAddress, clientAddress]]);
    if (wait > 0) throw new AppError('rate-limited', 'too many failed attempts; try again later', { retryAfterSeconds: wait });
    const who = await this.identifyKey(input.key, { touch: false });
    // Both names compared, whatever the first gives (the same work for every wrong answer).
    const orgOk = who !== undefined && constantTimeEqual(who.orgName, input.orgName);
    const appOk = who !== undefined && constantTimeEqual(who.appName, input.appName);
    if (!who || !orgOk || !appOk) {
      await this.throttle.recordFailure(this.perAddress, clientAddress);
      throw clientCredentialsWrong();
    }
    const { db, clock, config } = this.deps;
    await touchDownloadKey(db, who.keyId, clock.now());
    const nowS = toUnixSeconds(clock.now());
    const exp = nowS + config.faststart.downloadTokenSeconds;
    const token = signDownloadToken({ st: nowS, exp, acl: appAcl('/cdn', who.orgName, who.appName) }, this.opts.depotTokenKey);
    const origins: Array<{ deployment: string; token: string }> = [];
    for (const d of await targetDeploymentsOfApp(db, who.orgId, who.appId)) {
      let key: string | null = null;
      try {
        key = openDownloadAuthKey(d, this.opts.secrets);
      } catch {
        continue; // a secret sealed under another installation key: that origin gets no token
      }
      if (key === null) continue;
      const prefix = d.origin_prefix ? `/${d.origin_prefix}` : '';
      origins.push({ deployment: d.name, token: signDownloadToken({ st: nowS, exp, acl: appAcl(prefix, who.orgName, who.appName) }, key) });
    }
    return { auth: { token, expires: exp }, release: await this.readRelease(who.orgName, who.appName), ...(origins.length > 0 ? { origins } : {}) };
  }

  /** identifyKey behind the per-address throttle of clientAuth (429 rate-limited; failures counted). */
  async identifyKeyThrottled(key: string, clientAddress: string): Promise<ClientIdentity | undefined> {
    const wait = await this.throttle.retryAfterSeconds([[this.perAddress, clientAddress]]);
    if (wait > 0) throw new AppError('rate-limited', 'too many failed attempts; try again later', { retryAfterSeconds: wait });
    const who = await this.identifyKey(key);
    if (!who) await this.throttle.recordFailure(this.perAddress, clientAddress);
    return who;
  }

  /** The org and app of an access key, touching its last use unless told not to; undefined for an unknown key. */
  async identifyKey(key: string, o: { touch?: boolean } = {}): Promise<(ClientIdentity & { keyId: string }) | undefined> {
    if (key.length === 0 || key.length > 200) return undefined;
    const { db, clock } = this.deps;
    const row = await findDownloadKeyByHash(db, sha256Hex(key));
    if (!row) return undefined;
    const app = await findAppWithOrg(db, row.app_id);
    if (!app) return undefined;
    if (o.touch !== false) await touchDownloadKey(db, row.id, clock.now());
    return { ...app, keyId: row.id };
  }

  /** Verifies a depot token (signature, time); `path` checks the ACL too. */
  checkToken(token: string, path?: string): TokenCheck {
    return verifyDownloadToken(token, this.opts.depotTokenKey, toUnixSeconds(this.deps.clock.now()), path);
  }

  /**
   * The depot's gate for GET /cdn/{path}: files of an app with download keys need a valid token
   * whose ACL covers `/cdn/{path}`. Missing, wrong, expired and other-app tokens: 403 forbidden
   * (decided: the issue asks 403 for all of them on /cdn; the message says which).
   */
  async checkDepotAccess(path: string, token: string | undefined): Promise<void> {
    const m = /^(?:dxf|pat)\/([^/]+)\/([^/]+)\//.exec(path);
    if (!m) return;
    if (!(await this.appHasKeys(m[1], m[2]))) return;
    if (token === undefined || token === '') throw forbiddenDownload('this app needs a download token (query token= or header x-rockit-download-token)');
    const check = this.checkToken(token, `/cdn/${path}`);
    if (check.ok) return;
    const why = { malformed: 'the download token is malformed', signature: 'the download token is invalid', expired: 'the download token has expired',
      'not-yet-valid': 'the download token is not valid yet', acl: 'the download token is for other files' } as const;
    throw forbiddenDownload(why[check.reason]);
  }

  /**
   * Whether an app named so (ignoring ASCII case: a case-insensitive blob store would serve
   * `dxf/ACME/…` from `dxf/acme/…`) has download keys. The token's ACL is then compared exactly.
   */
  private async appHasKeys(orgName: string, appName: string): Promise<boolean> {
    return hasDownloadKeysIgnoringCase(this.deps.db, orgName, appName);
  }

  private async readRelease(orgName: string, appName: string): Promise<Record<string, unknown> | null> {
    try {
      const got = await this.opts.depot.get(releaseKey(orgName, appName));
      const chunks: Buffer[] = [];
      for await (const c of got.body) chunks.push(c as Buffer);
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch (e) {
      // A name the layout refuses can have no release.
      if (isStorageError(e) && (e.code === 'not-found' || e.code === 'invalid-key')) return null;
      throw e;
    }
  }
}

const toDto = (r: DownloadKeyRow, appName: string): DownloadKeyDto => ({
  id: r.id,
  appName,
  label: r.label,
  created: toUnixSeconds(Number(r.created_ms)),
  lastUsed: r.last_used_ms === null ? null : toUnixSeconds(Number(r.last_used_ms)),
});
