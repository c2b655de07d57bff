import { sql } from 'kysely';
import { IMPORT_TASK_TYPES } from '../../domain/task-types.js';
import type { AppRow, AppUpdate, DeploymentRow } from '../app-tables.js';
import type { DbCapabilities } from '../capabilities.js';
import { applyWindow, contains, type Executor, type ListWindow } from './common.js';

/**
 * The apps table (api.md §7.1) and its deployment list (app_deployments): the one module that writes
 * them, org-scoped lookups, and the figures the import pipeline keeps on the app (build ids, size,
 * processing and error state, the live build).
 */

export const findApp = (db: Executor, orgId: string, name: string): Promise<AppRow | undefined> =>
  db.selectFrom('apps').selectAll().where('org_id', '=', orgId).where('name', '=', name).executeTakeFirst();

export const findAppById = (db: Executor, appId: string): Promise<AppRow | undefined> =>
  db.selectFrom('apps').selectAll().where('id', '=', appId).executeTakeFirst();

/** apps.size_bytes = images of the kept builds + patches (bytes in the depot). */
export async function refreshAppSize(db: Executor, appId: string, nowMs: number): Promise<void> {
  const images = await db
    .selectFrom('builds')
    .select((e) => e.fn.coalesce(e.fn.sum<number>('image_bytes'), e.lit(0)).as('s'))
    .where('app_id', '=', appId)
    .executeTakeFirstOrThrow();
  const patches = await db
    .selectFrom('patches')
    .select((e) => e.fn.coalesce(e.fn.sum<number>('size_bytes'), e.lit(0)).as('s'))
    .where('app_id', '=', appId)
    .executeTakeFirstOrThrow();
  await db.updateTable('apps').set({ size_bytes: Number(images.s) + Number(patches.s), updated_ms: nowMs }).where('id', '=', appId).execute();
}


/** The app points at its newly published build: error state cleared, unlocked (markPublished of build.repository). */
export async function setLiveBuild(db: Executor, appId: string, buildId: number, dxfName: string, nowMs: number): Promise<void> {
  await db.updateTable('apps').set({ i_cur_build: buildId, dxf_name: dxfName, error: null, locked: 0, updated_ms: nowMs }).where('id', '=', appId).execute();
}

/** Puts the app in error state (api.md §7.1 `error`) and locks it against new imports. */
export async function markAppError(db: Executor, appId: string, error: Record<string, unknown>, nowMs: number): Promise<void> {
  await db.updateTable('apps').set({ error: JSON.stringify(error), locked: 1, updated_ms: nowMs }).where('id', '=', appId).execute();
}

/**
 * Recomputes `apps.processing`: 1 while a pipeline task of the app (other than `exceptTask`, the
 * one ending now) is submitted or running.
 */
export async function refreshProcessing(db: Executor, orgId: string, appName: string, exceptTask?: string): Promise<void> {
  const except = exceptTask ?? '';
  await sql`
    update apps set processing = case when exists (
      select 1 from tasks t where t.org_id = ${orgId} and t.app_name = ${appName}
        and t.type in (${sql.join([...IMPORT_TASK_TYPES])}) and t.status in ('submitted', 'running') and t.name <> ${except}
    ) then 1 else 0 end
    where org_id = ${orgId} and name = ${appName}`.execute(db);
}

export async function setProcessing(db: Executor, appId: string, nowMs: number): Promise<void> {
  await db.updateTable('apps').set({ processing: 1, updated_ms: nowMs }).where('id', '=', appId).execute();
}

/** The app with its org's id and name (what a download key identifies). */
export const findAppWithOrg = (db: Executor, appId: string): Promise<{ appId: string; appName: string; orgId: string; orgName: string } | undefined> =>
  db
    .selectFrom('apps')
    .innerJoin('orgs', 'orgs.id', 'apps.org_id')
    .select(['apps.id as appId', 'apps.name as appName', 'orgs.id as orgId', 'orgs.name as orgName'])
    .where('apps.id', '=', appId)
    .executeTakeFirst();

/**
 * Locks the app row until the transaction ends (no-op without row locks: SQLite serializes writers),
 * so checks over rows that hang off the app (its download keys' count) cannot interleave.
 */
export async function lockApp(trx: Executor, caps: DbCapabilities, appId: string): Promise<void> {
  if (!caps.rowLocks) return;
  await trx.selectFrom('apps').select('id').where('id', '=', appId).forUpdate().execute();
}

/**
 * Takes the app's next build id, which must still be `buildId` (compare-and-set): throws when a
 * concurrent assignment took it first.
 */
export async function takeNextBuildId(db: Executor, appId: string, buildId: number): Promise<void> {
  const r = await db.updateTable('apps').set({ next_build_id: buildId + 1 }).where('id', '=', appId).where('next_build_id', '=', buildId).executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) throw new Error('concurrent build id assignment');
}

/** Adds a stored trace's bytes to the app's consumption (apps.traces_bytes). */
export async function addTracesBytes(db: Executor, appId: string, bytes: number): Promise<void> {
  await db
    .updateTable('apps')
    .set((eb) => ({ traces_bytes: eb('traces_bytes', '+', bytes) }))
    .where('id', '=', appId)
    .execute();
}

export interface AppFilter {
  /** Partial, case-insensitive match on the name. */
  name?: string;
  /** true: only apps in error state; false: only apps that are not. */
  error?: boolean;
}

export async function listApps(db: Executor, orgId: string, f: AppFilter, w: ListWindow): Promise<{ total: number; rows: AppRow[] }> {
  let base = db.selectFrom('apps').where('org_id', '=', orgId);
  if (f.name) base = base.where(contains('name', f.name));
  if (f.error !== undefined) base = base.where('error', f.error ? 'is not' : 'is', null);
  const { total } = await base.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
  const rows = await applyWindow(base.selectAll(), w, 'name').execute();
  return { total: Number(total), rows };
}

/** The names of every org and every `org/app` of the installation (what mkraw's local caches may keep). */
export async function liveOrgsAndApps(db: Executor): Promise<{ orgs: Set<string>; apps: Set<string> }> {
  const orgs = await db.selectFrom('orgs').select('name').execute();
  const apps = await db.selectFrom('apps').innerJoin('orgs', 'orgs.id', 'apps.org_id').select(['orgs.name as org_name', 'apps.name as app_name']).execute();
  return { orgs: new Set(orgs.map((o) => o.name)), apps: new Set(apps.map((a) => `${a.org_name}/${a.app_name}`)) };
}

/** Names of every app of the org, sorted. */
export async function appNamesOfOrg(db: Executor, orgId: string): Promise<string[]> {
  const rows = await db.selectFrom('apps').select('name').where('org_id', '=', orgId).orderBy('name').execute();
  return rows.map((r) => r.name);
}

export async function insertApp(db: Executor, row: AppRow): Promise<void> {
  await db.insertInto('apps').values(row).execute();
}

export async function updateApp(db: Executor, id: string, changes: AppUpdate): Promise<void> {
  await db.updateTable('apps').set(changes).where('id', '=', id).execute();
}

/** Deletes the app; its deployment list, builds, patches and publication records go with it (cascade). */
export async function deleteApp(db: Executor, id: string): Promise<void> {
  await db.deleteFrom('apps').where('id', '=', id).execute();
}

/** Replaces the app's explicit deployment list (empty = every deployment of the org). */
export async function setAppDeployments(db: Executor, appId: string, deploymentIds: string[]): Promise<void> {
  await db.deleteFrom('app_deployments').where('app_id', '=', appId).execute();
  if (deploymentIds.length > 0) {
    await db.insertInto('app_deployments').values(deploymentIds.map((deployment_id) => ({ app_id: appId, deployment_id }))).execute();
  }
}

/** Explicit deployment names per app id (sorted; empty = all of the org's), for a page of apps in one query. */
export async function deploymentNamesOfApps(db: Executor, appIds: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>(appIds.map((id) => [id, []]));
  if (appIds.length === 0) return out;
  const rows = await db
    .selectFrom('app_deployments')
    .innerJoin('deployments', 'deployments.id', 'app_deployments.deployment_id')
    .select(['app_deployments.app_id', 'deployments.name'])
    .where('app_deployments.app_id', 'in', appIds)
    .orderBy('deployments.name')
    .execute();
  for (const r of rows) out.get(r.app_id)?.push(r.name);
  return out;
}

export interface AppStoredBytes {
  appName: string;
  buildsBytes: number;
  imagesBytes: number;
  patchesBytes: number;
  tracesBytes: number;
}

/** Stored bytes of every app of the org, by name (consumption, api.md §12). */
export async function storedBytesOfApps(db: Executor, orgId: string): Promise<AppStoredBytes[]> {
  const rows = await db
    .selectFrom('apps')
    .select((eb) => [
      'apps.name',
      'apps.uploads_bytes',
      'apps.traces_bytes',
      eb
        .selectFrom('builds')
        .select((e) => e.fn.coalesce(e.fn.sum<number>('builds.image_bytes'), e.lit(0)).as('s'))
        .whereRef('builds.app_id', '=', 'apps.id')
        .as('images'),
      eb
        .selectFrom('patches')
        .select((e) => e.fn.coalesce(e.fn.sum<number>('patches.size_bytes'), e.lit(0)).as('s'))
        .whereRef('patches.app_id', '=', 'apps.id')
        .as('patches'),
    ])
    .where('apps.org_id', '=', orgId)
    .orderBy('apps.name')
    .execute();
  return rows.map((r) => ({
    appName: r.name,
    buildsBytes: Number(r.uploads_bytes),
    imagesBytes: Number(r.images ?? 0),
    patchesBytes: Number(r.patches ?? 0),
    tracesBytes: Number(r.traces_bytes),
  }));
}

/** Ids of the deployments that recorded a publication of the app. */
export async function deploymentIdsPublishingApp(db: Executor, appId: string): Promise<string[]> {
  const rows = await db.selectFrom('app_publications').select('deployment_id').where('app_id', '=', appId).execute();
  return rows.map((r) => r.deployment_id);
}

/**
 * Where an app is published: the deployments its explicit list names, or every deployment of
 * the org when the list is empty (api.md §7.3), by name.
 */
export async function targetDeploymentsOfApp(db: Executor, orgId: string, appId: string): Promise<DeploymentRow[]> {
  const explicit = await db
    .selectFrom('app_deployments')
    .innerJoin('deployments', 'deployments.id', 'app_deployments.deployment_id')
    .selectAll('deployments')
    .where('app_deployments.app_id', '=', appId)
    .orderBy('deployments.name')
    .execute();
  if (explicit.length > 0) return explicit;
  return db.selectFrom('deployments').selectAll().where('org_id', '=', orgId).orderBy('name').execute();
}

/** One month (UTC, `YYYY-MM`) of what the org's records still hold, by creation time. */
export interface MonthlyConsumption {
  month: string;
  builds: number;
  buildsBytes: number;
  imagesBytes: number;
  patchesBytes: number;
  traces: number;
  tracesBytes: number;
}

/** `YYYY-MM` of a UNIX time in ms (UTC). */
function monthOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
}

/**
 * The last `months` months up to the one holding `nowMs` (oldest first, empty months as zeros): builds,
 * patches and traces of the org's apps by the month they were created. Rotated builds and pruned
 * traces are gone from the records, so a month shows what is still held from it.
 */
export async function monthlyConsumption(db: Executor, orgId: string, nowMs: number, months: number): Promise<MonthlyConsumption[]> {
  const now = new Date(nowMs);
  const startMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - (months - 1), 1);
  const series = new Map<string, MonthlyConsumption>();
  for (let i = 0; i < months; i++) {
    const month = monthOf(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - (months - 1) + i, 1));
    series.set(month, { month, builds: 0, buildsBytes: 0, imagesBytes: 0, patchesBytes: 0, traces: 0, tracesBytes: 0 });
  }
  const [builds, patches, traces] = await Promise.all([
    db.selectFrom('builds').innerJoin('apps', 'apps.id', 'builds.app_id')
      .select(['builds.created_ms', 'builds.size_bytes', 'builds.image_bytes'])
      .where('apps.org_id', '=', orgId).where('builds.created_ms', '>=', startMs).execute(),
    db.selectFrom('patches').innerJoin('apps', 'apps.id', 'patches.app_id')
      .select(['patches.created_ms', 'patches.size_bytes'])
      .where('apps.org_id', '=', orgId).where('patches.created_ms', '>=', startMs).execute(),
    db.selectFrom('traces').select(['created_ms', 'size_bytes'])
      .where('org_id', '=', orgId).where('created_ms', '>=', startMs).execute(),
  ]);
  for (const b of builds) {
    const m = series.get(monthOf(Number(b.created_ms)));
    if (!m) continue;
    m.builds += 1;
    m.buildsBytes += Number(b.size_bytes);
    m.imagesBytes += Number(b.image_bytes);
  }
  for (const p of patches) {
    const m = series.get(monthOf(Number(p.created_ms)));
    if (m) m.patchesBytes += Number(p.size_bytes);
  }
  for (const t of traces) {
    const m = series.get(monthOf(Number(t.created_ms)));
    if (!m) continue;
    m.traces += 1;
    m.tracesBytes += Number(t.size_bytes);
  }
  return [...series.values()];
}
