import type { DbCapabilities } from '../capabilities.js';
import type { DeploymentRow, DeploymentStatus, DeploymentUpdate } from '../app-tables.js';
import { applyWindow, contains, type Executor, type ListWindow } from './common.js';

/** Org-scoped access to deployments (CDN origins, api.md §9.1); every lookup takes the org id. */

export const findDeployment = (db: Executor, orgId: string, name: string): Promise<DeploymentRow | undefined> =>
  db.selectFrom('deployments').selectAll().where('org_id', '=', orgId).where('name', '=', name).executeTakeFirst();

/**
 * The org's deployments with these names (unknown names are simply absent). With `lock` (inside a
 * transaction, where the database has row locks) the rows are share-locked until it ends, so a
 * concurrent delete of one of them waits, or is waited for and then seen.
 */
export const findDeploymentsByNames = (db: Executor, orgId: string, names: string[], lock?: DbCapabilities): Promise<DeploymentRow[]> => {
  if (names.length === 0) return Promise.resolve([]);
  const query = db.selectFrom('deployments').selectAll().where('org_id', '=', orgId).where('name', 'in', names).orderBy('name');
  return (lock?.rowLocks ? query.forShare() : query).execute();
};

/**
 * Locks the deployment row until the transaction ends (no-op without row locks: SQLite serializes
 * writers), so "no app names it" cannot change between the check and the delete.
 */
export async function lockDeployment(trx: Executor, caps: DbCapabilities, id: string): Promise<void> {
  if (!caps.rowLocks) return;
  await trx.selectFrom('deployments').select('id').where('id', '=', id).forUpdate().execute();
}

/** Every deployment of the org, by name. */
export const allDeploymentsOfOrg = (db: Executor, orgId: string): Promise<DeploymentRow[]> =>
  db.selectFrom('deployments').selectAll().where('org_id', '=', orgId).orderBy('name').execute();

/** Every deployment of the installation with its org's name, by org then name (the maintenance self-check). */
export const allDeploymentsWithOrg = (db: Executor): Promise<Array<DeploymentRow & { org_name: string }>> =>
  db
    .selectFrom('deployments')
    .innerJoin('orgs', 'orgs.id', 'deployments.org_id')
    .selectAll('deployments')
    .select('orgs.name as org_name')
    .orderBy('orgs.name')
    .orderBy('deployments.name')
    .execute();

export interface DeploymentFilter {
  /** Partial, case-insensitive match on the name. */
  name?: string;
  /** true: only deployments whose status is `error`; false: only `ok`. */
  error?: boolean;
}

export async function listDeployments(db: Executor, orgId: string, f: DeploymentFilter, w: ListWindow): Promise<{ total: number; rows: DeploymentRow[] }> {
  let base = db.selectFrom('deployments').where('org_id', '=', orgId);
  if (f.name) base = base.where(contains('name', f.name));
  if (f.error !== undefined) base = base.where('status', '=', f.error ? 'error' : 'ok');
  const { total } = await base.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
  const rows = await applyWindow(base.selectAll(), w, 'name').execute();
  return { total: Number(total), rows };
}

export async function insertDeployment(db: Executor, row: DeploymentRow): Promise<void> {
  await db.insertInto('deployments').values(row).execute();
}

export async function updateDeployment(db: Executor, id: string, changes: DeploymentUpdate): Promise<void> {
  await db.updateTable('deployments').set(changes).where('id', '=', id).execute();
}

/** Publications of apps to it go with it (cascade); callers check `appsNamingDeployment` first. */
export async function deleteDeployment(db: Executor, id: string): Promise<void> {
  await db.deleteFrom('deployments').where('id', '=', id).execute();
}

/** Names of the apps whose explicit deployment list names this deployment, sorted. */
export async function appsNamingDeployment(db: Executor, deploymentId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('app_deployments')
    .innerJoin('apps', 'apps.id', 'app_deployments.app_id')
    .select('apps.name')
    .where('app_deployments.deployment_id', '=', deploymentId)
    .orderBy('apps.name')
    .execute();
  return rows.map((r) => r.name);
}

/**
 * Records a deployment's health as last observed (a verify, or the deploy step publishing to it).
 * `message` is shown to the org: it must never contain a secret (storage messages never do).
 */
export async function recordDeploymentStatus(db: Executor, id: string, status: DeploymentStatus, message: string, nowMs: number): Promise<void> {
  await db.updateTable('deployments').set({ status, message, checked_ms: nowMs }).where('id', '=', id).execute();
}

/** Sets what is published of an app on a deployment (the deploy step calls it after each publish). */
export async function recordPublication(db: Executor, appId: string, deploymentId: string, sizeBytes: number, nowMs: number): Promise<void> {
  await db
    .insertInto('app_publications')
    .values({ app_id: appId, deployment_id: deploymentId, size_bytes: sizeBytes, updated_ms: nowMs })
    .onConflict((oc) => oc.columns(['app_id', 'deployment_id']).doUpdateSet({ size_bytes: sizeBytes, updated_ms: nowMs }))
    .execute();
}

/** Published bytes per deployment of the org (every deployment, 0 when nothing is published), by name. */
export async function publishedBytesByDeployment(db: Executor, orgId: string): Promise<Array<{ name: string; publishedBytes: number }>> {
  const rows = await db
    .selectFrom('deployments')
    .leftJoin('app_publications', 'app_publications.deployment_id', 'deployments.id')
    .select(['deployments.name', (eb) => eb.fn.coalesce(eb.fn.sum<number>('app_publications.size_bytes'), eb.lit(0)).as('bytes')])
    .where('deployments.org_id', '=', orgId)
    .groupBy('deployments.name')
    .orderBy('deployments.name')
    .execute();
  return rows.map((r) => ({ name: r.name, publishedBytes: Number(r.bytes) }));
}
