import type { AppRow, AppUpdate, BuildRow, DeploymentRow, PatchRow } from '../app-tables.js';
import { applyWindow, contains, type Executor, type ListWindow } from './common.js';

/** Org-scoped access to apps (api.md §7.1) and the rows that hang off them. */

export const findApp = (db: Executor, orgId: string, name: string): Promise<AppRow | undefined> =>
  db.selectFrom('apps').selectAll().where('org_id', '=', orgId).where('name', '=', name).executeTakeFirst();

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

/** Builds per app id, oldest first. */
export async function buildsOfApps(db: Executor, appIds: string[]): Promise<Map<string, BuildRow[]>> {
  const out = new Map<string, BuildRow[]>(appIds.map((id) => [id, []]));
  if (appIds.length === 0) return out;
  const rows = await db.selectFrom('builds').selectAll().where('app_id', 'in', appIds).orderBy('app_id').orderBy('build_id').execute();
  for (const r of rows) out.get(r.app_id)?.push(r);
  return out;
}

/** Patches per app id, by target then source build. */
export async function patchesOfApps(db: Executor, appIds: string[]): Promise<Map<string, PatchRow[]>> {
  const out = new Map<string, PatchRow[]>(appIds.map((id) => [id, []]));
  if (appIds.length === 0) return out;
  const rows = await db
    .selectFrom('patches')
    .selectAll()
    .where('app_id', 'in', appIds)
    .orderBy('app_id')
    .orderBy('to_build_id')
    .orderBy('from_build_id')
    .execute();
  for (const r of rows) out.get(r.app_id)?.push(r);
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
