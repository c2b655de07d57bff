import { randomUUID } from 'node:crypto';
import type { AppRow, AppUpdate, BuildRow, DeploymentRow, PatchRow } from '../db/app-tables.js';
import { isUniqueViolation } from '../db/errors.js';
import {
  deleteApp,
  deploymentIdsPublishingApp,
  deploymentNamesOfApps,
  findApp,
  insertApp,
  listApps,
  setAppDeployments,
  setProcessing,
  targetDeploymentsOfApp,
  updateApp,
} from '../db/repositories/app.repository.js';
import { buildsOfApps, patchesOfApps } from '../db/repositories/build.repository.js';
import type { TaskRow } from '../db/database.js';
import { allDeploymentsOfOrg } from '../db/repositories/deployment.repository.js';
import type { Executor } from '../db/repositories/common.js';
import { toUnixSeconds } from '../domain/clock.js';
import { AppError, invalidParam, notFound } from '../domain/errors.js';
import { parseListQuery, project, type Page, type RawListQuery } from '../domain/list.js';
import type { SecretBox } from '../domain/secret-box.js';
import { requirePermission, type Principal, type ServiceDeps } from './context.js';
import { openDeploymentSettings } from './deployment.service.js';
import { appQueueKey } from '../queue/task-types.js';
import { emitEvent } from '../webhooks/emit.js';
import type { AppDto, AppErrorState, CreateAppInput, PatchAppInput, TaskDto } from '@rockit/contract';
import { lockedMessage, toTaskDto } from './mappers.js';
import type { CleanupReport, NamedOrigin, OriginFileOps } from './published-files.js';
import type { TaskQueue } from '../queue/task-queue.js';

export const DEFAULT_MAX_BUILDS = 5;
export const MIN_MAX_BUILDS = 1;
export const MAX_MAX_BUILDS = 100;

/** The answer of a patch: the app and, when `iCurBuild` was given, the `deploy` task that makes it live. */
export interface PatchedApp {
  app: AppDto;
  task?: TaskDto;
}

export interface DeleteAppResult {
  /** Removal of the app's files from the depot and its deployments; the records are gone either way. */
  cleanup: CleanupReport;
}

export interface AppServiceOptions {
  secrets: SecretBox;
  files: OriginFileOps;
  /** Removes the stored traces (blobs) of a deleted app; their rows go with the app (cascade). */
  deleteTraceBlobs?: (orgId: string, appId: string) => Promise<void>;
  /** The task queue: woken after a set-live task is committed. */
  queue: TaskQueue;
}

const APP_LIST = {
  orderable: ['name', 'label', 'maxBuilds', 'iCurBuild', 'sizeBytes', 'created', 'updated'],
  fields: [
    'name', 'label', 'maxBuilds', 'iCurBuild', 'dxfName', 'builds', 'patches', 'deployments', 'processing', 'exporting', 'locked',
    'error', 'sizeBytes', 'created', 'updated',
  ],
  defaultOrder: [{ field: 'name', desc: false }],
} as const;
const APP_COLUMNS: Record<string, string> = {
  name: 'name', label: 'label', maxBuilds: 'max_builds', iCurBuild: 'i_cur_build', sizeBytes: 'size_bytes', created: 'created_ms', updated: 'updated_ms',
};

/**
 * The app object of api.md §7.1. `builds` lists only builds whose image exists (state `ready`);
 * builds being imported or that failed are tasks, not builds.
 */
export function toAppDto(r: AppRow, deployments: string[], builds: BuildRow[], patches: PatchRow[]): AppDto {
  return {
    name: r.name,
    label: r.label,
    maxBuilds: Number(r.max_builds),
    iCurBuild: r.i_cur_build === null ? null : Number(r.i_cur_build),
    dxfName: r.dxf_name,
    builds: builds
      .filter((b) => b.state === 'ready')
      .map((b) => ({
        buildId: Number(b.build_id), buildName: b.build_name, sizeBytes: Number(b.size_bytes), files: Number(b.files), created: toUnixSeconds(Number(b.created_ms)),
      })),
    patches: patches.map((p) => ({ fromBuildId: Number(p.from_build_id), toBuildId: Number(p.to_build_id), sizeBytes: Number(p.size_bytes) })),
    deployments,
    processing: Number(r.processing) !== 0,
    exporting: Number(r.exporting) !== 0,
    locked: Number(r.locked) !== 0,
    error: r.error === null ? null : (JSON.parse(r.error) as AppErrorState),
    sizeBytes: Number(r.size_bytes),
    created: toUnixSeconds(Number(r.created_ms)),
    updated: toUnixSeconds(Number(r.updated_ms)),
  };
}

function checkMaxBuilds(n: number): void {
  if (!Number.isInteger(n) || n < MIN_MAX_BUILDS || n > MAX_MAX_BUILDS) {
    throw invalidParam('maxBuilds', `must be an integer in ${MIN_MAX_BUILDS}..${MAX_MAX_BUILDS}`);
  }
}

/** Apps of the caller's org (`apps`, api.md §7.1). Another org's app is always `not-found`. */
export class AppService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly opts: AppServiceOptions,
  ) {}

  async list(auth: Principal, filter: { name?: string; error?: boolean }, raw: RawListQuery): Promise<Page<AppDto>> {
    const user = requirePermission(auth, 'apps', 'read');
    const q = parseListQuery(raw, APP_LIST);
    const { db } = this.deps;
    const { total, rows } = await listApps(db, user.orgId, filter, {
      offset: q.offset, limit: q.limit, order: q.order.map((o) => ({ column: APP_COLUMNS[o.field], desc: o.desc })),
    });
    const items = await this.dtos(db, rows);
    return { total, offset: q.offset, limit: q.limit, items: items.map((a) => project(a, q.fields)) };
  }

  async get(auth: Principal, name: string, fields?: string[]): Promise<Partial<AppDto>> {
    const user = requirePermission(auth, 'apps', 'read');
    const q = parseListQuery({ fields }, APP_LIST);
    const row = await findApp(this.deps.db, user.orgId, name);
    if (!row) throw notFound('app', name);
    const [dto] = await this.dtos(this.deps.db, [row]);
    return project(dto, q.fields);
  }

  /** Errors: invalid-param `maxBuilds` (1–100), invalid-param `deployments` for a name not in the org; already-exists. */
  async create(auth: Principal, input: CreateAppInput): Promise<AppDto> {
    const user = requirePermission(auth, 'apps', 'create');
    const maxBuilds = input.maxBuilds ?? DEFAULT_MAX_BUILDS;
    checkMaxBuilds(maxBuilds);
    const now = this.deps.clock.now();
    const row: AppRow = {
      id: randomUUID(), org_id: user.orgId, name: input.name, label: input.label, max_builds: maxBuilds,
      i_cur_build: null, dxf_name: null, next_build_id: 1, processing: 0, exporting: 0, locked: 0, error: null,
      size_bytes: 0, uploads_bytes: 0, traces_bytes: 0, created_ms: now, updated_ms: now,
    };
    let names: string[] = [];
    try {
      await this.deps.db.transaction().execute(async (trx) => {
        const deployments = await this.resolveDeployments(trx, user.orgId, input.deployments ?? null);
        names = deployments.map((d) => d.name);
        await insertApp(trx, row);
        await setAppDeployments(trx, row.id, deployments.map((d) => d.id));
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw new AppError('already-exists', `app '${input.name}' already exists`, { param: 'name' });
      throw e;
    }
    return toAppDto(row, names, [], []);
  }

  /**
   * Changes label, maxBuilds (builds beyond a lowered maxBuilds go at the next import's rotation)
   * and the deployment list (replaced; null or [] = every deployment of the org). Errors as create, plus not-found.
   */
  async patch(auth: Principal, input: PatchAppInput): Promise<PatchedApp> {
    const user = requirePermission(auth, 'apps', 'update');
    if (input.maxBuilds !== undefined) checkMaxBuilds(input.maxBuilds);
    if (input.iCurBuild !== undefined && (!Number.isSafeInteger(input.iCurBuild) || input.iCurBuild < 1)) {
      throw invalidParam('iCurBuild', 'must be the id of a kept build (an integer from 1)');
    }
    const { db, clock } = this.deps;
    let task: TaskRow | undefined;
    const id = await db.transaction().execute(async (trx) => {
      const row = await findApp(trx, user.orgId, input.name);
      if (!row) throw notFound('app', input.name);
      const changes: AppUpdate = { updated_ms: clock.now() };
      if (input.iCurBuild !== undefined) {
        // Release control: only a kept, ready build; never while an import or another set-live runs.
        if (Number(row.processing) !== 0) throw new AppError('app-locked', `app '${row.name}' is being processed; set the live build when the import ends`);
        if (Number(row.locked) !== 0) {
          const since = row.error ? (JSON.parse(row.error) as { task?: string }) : {};
          throw new AppError('app-locked', lockedMessage(row.name, row.error !== null), {
            ...(since.task ? { task: since.task } : {}),
          });
        }
        const kept = (await buildsOfApps(trx, [row.id])).get(row.id) ?? [];
        const build = kept.find((b) => Number(b.build_id) === input.iCurBuild);
        if (!build || build.state !== 'ready') {
          const ids = kept.filter((b) => b.state === 'ready').map((b) => Number(b.build_id));
          throw invalidParam('iCurBuild', `build ${input.iCurBuild} is not a kept, ready build of app '${row.name}' (kept: ${ids.join(', ') || 'none'})`);
        }
        const now = clock.now();
        task = await this.opts.queue.enqueue(trx, {
          type: 'deploy', payload: { setLive: { appId: row.id, buildId: input.iCurBuild } }, orgId: user.orgId, appName: row.name,
          buildId: input.iCurBuild, queueKey: appQueueKey(row.id),
        });
        await setProcessing(trx, row.id, now);
        await emitEvent(trx, { type: 'deploy', event: 'submit', orgName: user.orgName, appName: row.name, taskName: task.name, ...(build.build_name ? { buildName: build.build_name } : {}) }, now);
      }
      if (input.locked === false && row.error !== null) {
        const since = JSON.parse(row.error) as { task?: string };
        throw new AppError('app-locked', `app '${row.name}' is locked after a failed deploy: fix the deployment and retry the task`, {
          ...(since.task ? { task: since.task } : {}),
        });
      }
      if (input.locked !== undefined) changes.locked = input.locked ? 1 : 0;
      if (input.label !== undefined) changes.label = input.label;
      if (input.maxBuilds !== undefined) changes.max_builds = input.maxBuilds;
      if (input.deployments !== undefined) {
        const deployments = await this.resolveDeployments(trx, user.orgId, input.deployments);
        await setAppDeployments(trx, row.id, deployments.map((d) => d.id));
      }
      await updateApp(trx, row.id, changes);
      return row.id;
    });
    // After the commit, and only when a set-live task was enqueued (most updates enqueue nothing).
    if (task) this.opts.queue.wake();
    const row = await findApp(db, user.orgId, input.name);
    if (!row || row.id !== id) throw notFound('app', input.name);
    const [dto] = await this.dtos(db, [row]);
    return task ? { app: dto, task: toTaskDto(task) } : { app: dto };
  }

  /**
   * Deletes the app with its builds, patches and records (`409 app-locked` while an import is
   * processing it), then removes its files from the depot and from every deployment it may be
   * published on (its targets and any deployment that recorded a publication of it).
   */
  async delete(auth: Principal, name: string): Promise<DeleteAppResult> {
    const user = requirePermission(auth, 'apps', 'delete');
    let appId = '';
    const targets = await this.deps.db.transaction().execute(async (trx) => {
      const row = await findApp(trx, user.orgId, name);
      if (!row) throw notFound('app', name);
      if (Number(row.processing) !== 0) throw new AppError('app-locked', `app '${name}' is being processed; delete it when the import ends`);
      const current = new Set((await targetDeploymentsOfApp(trx, user.orgId, row.id)).map((d) => d.id));
      const published = new Set(await deploymentIdsPublishingApp(trx, row.id));
      const chosen = (await allDeploymentsOfOrg(trx, user.orgId)).filter((d) => current.has(d.id) || published.has(d.id));
      await deleteApp(trx, row.id);
      appId = row.id;
      return chosen;
    });
    const origins: NamedOrigin[] = [];
    const failures: CleanupReport['failures'] = [];
    for (const d of targets) {
      try {
        origins.push({ name: d.name, settings: openDeploymentSettings(d, this.opts.secrets) });
      } catch {
        failures.push({ origin: d.name, message: 'the stored secret does not open with the installation key' });
      }
    }
    const report = await this.opts.files.removeAppFiles(user.orgName, name, origins);
    try {
      await this.opts.deleteTraceBlobs?.(user.orgId, appId);
    } catch (e) {
      failures.push({ origin: 'depot', message: e instanceof Error ? e.message : String(e) });
    }
    return { cleanup: { ok: report.ok && failures.length === 0, failures: [...failures, ...report.failures] } };
  }

  private async dtos(db: Executor, rows: AppRow[]): Promise<AppDto[]> {
    const ids = rows.map((r) => r.id);
    const [deployments, builds, patches] = await Promise.all([deploymentNamesOfApps(db, ids), buildsOfApps(db, ids), patchesOfApps(db, ids)]);
    return rows.map((r) => toAppDto(r, deployments.get(r.id) ?? [], builds.get(r.id) ?? [], patches.get(r.id) ?? []));
  }

  /** null or [] = none stored (every deployment of the org); otherwise each name must exist in the org. */
  private async resolveDeployments(db: Executor, orgId: string, names: string[] | null): Promise<DeploymentRow[]> {
    if (names === null || names.length === 0) return [];
    const unique = [...new Set(names)];
    const found = await this.deps.repos.findDeploymentsByNamesLocked(db, orgId, unique);
    if (found.length !== unique.length) {
      const missing = unique.find((n) => !found.some((d) => d.name === n));
      throw invalidParam('deployments', `names an unknown deployment '${missing}'`);
    }
    return found;
  }
}
