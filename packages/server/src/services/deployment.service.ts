import { randomUUID } from 'node:crypto';
import type { CreateDeploymentInput, DeploymentDto, PatchDeploymentInput } from '@rockit/contract';
import type { DeploymentRow, DeploymentType, DeploymentUpdate } from '../db/app-tables.js';
import { isUniqueViolation } from '../db/errors.js';
import { appNamesOfOrg } from '../db/repositories/app.repository.js';
import {
  appsNamingDeployment,
  deleteDeployment,
  findDeployment,
  insertDeployment,
  listDeployments,
  updateDeployment,
} from '../db/repositories/deployment.repository.js';
import { toUnixSeconds } from '../domain/clock.js';
import { AppError, notFound } from '../domain/errors.js';
import { parseListQuery, project, type Page, type RawListQuery } from '../domain/list.js';
import type { SecretBox } from '../domain/secret-box.js';
import { namesRefusedHost, type AddressPolicy } from '../net/address-policy.js';
import { findFsPathProblem, findOriginSettingsProblem, normalizeOriginPrefix, type OriginSettings } from '../publish/origin.js';
import { normalizeS3Endpoint } from '../storage/s3-endpoint.js';
import { requirePermission, type Principal, type ServiceDeps } from './context.js';
import type { CleanupReport, OriginFileOps } from './published-files.js';

export interface DeleteDeploymentResult {
  /** Removal of the org's published files from the origin; records are deleted either way. */
  cleanup: CleanupReport;
}

export interface DeploymentServiceOptions {
  /** Seals S3 secret keys and download-auth keys under the installation key. */
  secrets: SecretBox;
  files: OriginFileOps;
  /**
   * Folders `fs` deployments must lie in. Undefined = anywhere except the installation's data
   * folder (the depot and database live there).
   */
  fsRoots?: readonly string[];
  /**
   * The SSRF guard: an S3 endpoint naming an address it refuses (an IP literal, localhost) is
   * refused here; names are checked when connecting (publish/origin.ts). Absent: any address.
   */
  addressPolicy?: AddressPolicy;
}

const NOT_CHECKED = 'not checked yet: publish to it, or PATCH it with "verify": true';

const DEPLOYMENT_LIST = {
  orderable: ['name', 'label', 'type', 'status', 'created', 'updated', 'checked'],
  fields: ['name', 'label', 'type', 'originPrefix', 's3', 'fs', 'downloadAuth', 'status', 'message', 'checked', 'created', 'updated'],
  defaultOrder: [{ field: 'name', desc: false }],
} as const;
const DEPLOYMENT_COLUMNS: Record<string, string> = {
  name: 'name', label: 'label', type: 'type', status: 'status', created: 'created_ms', updated: 'updated_ms', checked: 'checked_ms',
};

/** Associated data binding a sealed secret to its row and field: a sealed value copied elsewhere does not open. */
export const deploymentSecretContext = (deploymentId: string, field: 's3.secretAccessKey' | 'downloadAuth.key'): string =>
  `deployment:${deploymentId}:${field}`;

/** The origin settings of a stored deployment, secrets opened (for publishing and checks; never for responses). */
export function openDeploymentSettings(row: DeploymentRow, secrets: SecretBox): OriginSettings {
  return {
    type: row.type,
    originPrefix: row.origin_prefix,
    s3:
      row.type === 's3' && row.s3_endpoint !== null
        ? {
            endpoint: row.s3_endpoint,
            region: row.s3_region ?? '',
            bucket: row.s3_bucket ?? '',
            accessKeyId: row.s3_access_key_id ?? '',
            secretAccessKey: row.s3_secret_sealed === null ? '' : secrets.decrypt(row.s3_secret_sealed, deploymentSecretContext(row.id, 's3.secretAccessKey')),
            forcePathStyle: row.s3_force_path_style === null ? null : Number(row.s3_force_path_style) !== 0,
          }
        : null,
    fs: row.type === 'fs' && row.fs_path !== null ? { path: row.fs_path } : null,
  };
}

/** The download-auth key of a deployment, opened (for signing download tokens), or null. */
export function openDownloadAuthKey(row: DeploymentRow, secrets: SecretBox): string | null {
  return row.download_auth_key_sealed === null ? null : secrets.decrypt(row.download_auth_key_sealed, deploymentSecretContext(row.id, 'downloadAuth.key'));
}

export function toDeploymentDto(r: DeploymentRow): DeploymentDto {
  return {
    name: r.name,
    label: r.label,
    type: r.type,
    originPrefix: r.origin_prefix,
    s3:
      r.type === 's3' && r.s3_endpoint !== null
        ? {
            endpoint: r.s3_endpoint,
            region: r.s3_region ?? '',
            bucket: r.s3_bucket ?? '',
            accessKeyId: r.s3_access_key_id ?? '',
            forcePathStyle: r.s3_force_path_style !== null && Number(r.s3_force_path_style) !== 0,
          }
        : null,
    fs: r.type === 'fs' && r.fs_path !== null ? { path: r.fs_path } : null,
    downloadAuth: r.download_auth_type === 'token' ? { type: 'token' } : null,
    status: r.status,
    message: r.message,
    checked: r.checked_ms === null ? null : toUnixSeconds(Number(r.checked_ms)),
    created: toUnixSeconds(Number(r.created_ms)),
    updated: toUnixSeconds(Number(r.updated_ms)),
  };
}

/** Deployments = CDN origins of the caller's org (`deployments`, api.md §9.1). Secrets are write-only. */
export class DeploymentService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly opts: DeploymentServiceOptions,
  ) {}

  async list(auth: Principal, filter: { name?: string; error?: boolean }, raw: RawListQuery): Promise<Page<DeploymentDto>> {
    const user = requirePermission(auth, 'deployments', 'read');
    const q = parseListQuery(raw, DEPLOYMENT_LIST);
    const { total, rows } = await listDeployments(this.deps.db, user.orgId, filter, {
      offset: q.offset, limit: q.limit, order: q.order.map((o) => ({ column: DEPLOYMENT_COLUMNS[o.field], desc: o.desc })),
    });
    return { total, offset: q.offset, limit: q.limit, items: rows.map((r) => project(toDeploymentDto(r), q.fields)) };
  }

  /** `status`/`message` are the last observed health (a verify or a publish), not a live probe. */
  async get(auth: Principal, name: string): Promise<DeploymentDto> {
    const user = requirePermission(auth, 'deployments', 'read');
    const row = await findDeployment(this.deps.db, user.orgId, name);
    if (!row) throw notFound('deployment', name);
    return toDeploymentDto(row);
  }

  /**
   * Errors: invalid-param naming the field for settings that cannot describe an origin (or an
   * fs path outside the allowed folders), invalid-param `s3`/`fs` when `verify` fails (nothing
   * is stored then), already-exists for a taken name.
   */
  async create(auth: Principal, input: CreateDeploymentInput): Promise<DeploymentDto> {
    const user = requirePermission(auth, 'deployments', 'create');
    if (input.type === 's3' && input.fs !== undefined) throw wrongKind('fs', 's3');
    if (input.type === 'fs' && input.s3 !== undefined) throw wrongKind('s3', 'fs');
    const settings: OriginSettings = {
      type: input.type,
      originPrefix: input.originPrefix ?? null,
      s3: input.s3 ? { ...input.s3, forcePathStyle: input.s3.forcePathStyle ?? null } : null,
      fs: input.fs ?? null,
    };
    this.validate(settings);
    const now = this.deps.clock.now();
    const health = input.verify ? await this.verify(settings, now) : { status: 'ok' as const, message: NOT_CHECKED, checked_ms: null };
    const id = randomUUID();
    const row: DeploymentRow = {
      id, org_id: user.orgId, name: input.name, label: input.label ?? input.name, created_ms: now, updated_ms: now,
      ...this.settingsColumns(id, settings),
      download_auth_type: input.downloadAuth ? 'token' : null,
      download_auth_key_sealed: input.downloadAuth ? this.opts.secrets.encrypt(input.downloadAuth.key, deploymentSecretContext(id, 'downloadAuth.key')) : null,
      ...health,
    };
    try {
      await insertDeployment(this.deps.db, row);
    } catch (e) {
      if (isUniqueViolation(e)) throw new AppError('already-exists', `deployment '${input.name}' already exists`, { param: 'name' });
      throw e;
    }
    return toDeploymentDto(row);
  }

  /**
   * Changes settings. Changing `type` drops the other kind's settings (the new kind's must be
   * given). Changed origin settings reset the status to "not checked" unless `verify` runs; with
   * `verify` alone, only the status is refreshed. Files already published stay where they are.
   * Errors as for create, plus not-found.
   */
  async patch(auth: Principal, input: PatchDeploymentInput): Promise<DeploymentDto> {
    const user = requirePermission(auth, 'deployments', 'update');
    const { db, clock } = this.deps;
    const row = await findDeployment(db, user.orgId, input.name);
    if (!row) throw notFound('deployment', input.name);
    const current = openDeploymentSettings(row, this.opts.secrets);
    const type = input.type ?? row.type;
    if (type === 's3' && input.fs) throw wrongKind('fs', 's3');
    if (type === 'fs' && input.s3) throw wrongKind('s3', 'fs');

    const settings: OriginSettings = {
      type,
      originPrefix: input.originPrefix === undefined ? current.originPrefix : input.originPrefix,
      s3: null,
      fs: null,
    };
    if (type === 's3') {
      if (input.s3 === null) throw new AppError('invalid-param', 's3 cannot be removed from an s3 deployment', { param: 's3' });
      const base = row.type === 's3' ? current.s3 : null;
      settings.s3 = input.s3 === undefined ? base : ({ ...base, ...input.s3 } as OriginSettings['s3']);
    } else {
      if (input.fs === null) throw new AppError('invalid-param', 'fs cannot be removed from an fs deployment', { param: 'fs' });
      settings.fs = input.fs === undefined ? (row.type === 'fs' ? current.fs : null) : input.fs;
    }
    this.validate(settings);

    const now = clock.now();
    const originChanged =
      input.type !== undefined || input.originPrefix !== undefined || input.s3 !== undefined || input.fs !== undefined;
    const changes: DeploymentUpdate = { updated_ms: now, ...this.settingsColumns(row.id, settings) };
    if (input.label !== undefined) changes.label = input.label ?? row.name;
    if (input.downloadAuth !== undefined) {
      changes.download_auth_type = input.downloadAuth ? 'token' : null;
      changes.download_auth_key_sealed = input.downloadAuth
        ? this.opts.secrets.encrypt(input.downloadAuth.key, deploymentSecretContext(row.id, 'downloadAuth.key'))
        : null;
    }
    if (input.verify) Object.assign(changes, await this.verify(settings, now));
    else if (originChanged) Object.assign(changes, { status: 'ok', message: NOT_CHECKED, checked_ms: null });
    await updateDeployment(db, row.id, changes);
    return toDeploymentDto({ ...row, ...changes } as DeploymentRow);
  }

  /**
   * Deletes the deployment (409 in-use while an app names it), then removes the org's published
   * files from its origin. The records go first: a failed removal is reported in `cleanup`, it
   * does not bring the deployment back.
   */
  async delete(auth: Principal, name: string): Promise<DeleteDeploymentResult> {
    const user = requirePermission(auth, 'deployments', 'delete');
    const { row, appNames } = await this.deps.db.transaction().execute(async (trx) => {
      const found = await findDeployment(trx, user.orgId, name);
      if (!found) throw notFound('deployment', name);
      await this.deps.repos.lockDeployment(trx, found.id);
      const users = await appsNamingDeployment(trx, found.id);
      if (users.length > 0) {
        throw new AppError('in-use', `deployment '${name}' is used by app(s) ${users.join(', ')}`, { apps: users });
      }
      const apps = await appNamesOfOrg(trx, user.orgId);
      await deleteDeployment(trx, found.id);
      return { row: found, appNames: apps };
    });
    let settings: OriginSettings;
    try {
      settings = openDeploymentSettings(row, this.opts.secrets);
    } catch {
      return { cleanup: { ok: false, failures: [{ origin: name, message: 'the stored secret does not open with the installation key' }] } };
    }
    return { cleanup: await this.opts.files.removeDeploymentFiles(user.orgName, { name, settings }, appNames) };
  }

  private validate(settings: OriginSettings): void {
    const problem =
      findOriginSettingsProblem(settings) ??
      findFsPathProblem(settings, { dataDir: this.deps.config.dataDir, ...(this.opts.fsRoots ? { roots: this.opts.fsRoots } : {}) });
    if (problem) throw new AppError('invalid-param', problem.message, { param: problem.param });
    const policy = this.opts.addressPolicy;
    if (settings.type === 's3' && settings.s3 && policy && namesRefusedHost(new URL(normalizeS3Endpoint(settings.s3.endpoint)), policy)) {
      throw new AppError('invalid-param', 's3.endpoint must not name a loopback, private or link-local address, or localhost', { param: 's3.endpoint' });
    }
  }

  private async verify(settings: OriginSettings, nowMs: number): Promise<{ status: 'ok'; message: string; checked_ms: number }> {
    const result = await this.opts.files.checkOrigin(settings);
    if (!result.ok) {
      throw new AppError('invalid-param', `verification failed: ${result.message}`, {
        param: settings.type,
        ...(result.code ? { check: result.code } : {}),
      });
    }
    return { status: 'ok', message: result.message, checked_ms: nowMs };
  }

  /** Columns of the origin settings; the S3 secret sealed and bound to the row id. */
  private settingsColumns(id: string, s: OriginSettings) {
    const prefix = normalizeOriginPrefix(s.originPrefix);
    return {
      type: s.type,
      origin_prefix: prefix === '' ? null : prefix,
      s3_endpoint: s.s3?.endpoint ?? null,
      s3_region: s.s3?.region ?? null,
      s3_bucket: s.s3?.bucket ?? null,
      s3_access_key_id: s.s3?.accessKeyId ?? null,
      s3_secret_sealed: s.s3 ? this.opts.secrets.encrypt(s.s3.secretAccessKey, deploymentSecretContext(id, 's3.secretAccessKey')) : null,
      s3_force_path_style: s.s3 && s.s3.forcePathStyle !== null && s.s3.forcePathStyle !== undefined ? (s.s3.forcePathStyle ? 1 : 0) : null,
      fs_path: s.fs?.path ?? null,
    };
  }
}

const wrongKind = (field: 's3' | 'fs', type: DeploymentType): AppError =>
  new AppError('invalid-param', `${field} is not a setting of ${type} deployments`, { param: field });
