import { findDeploymentsByNames } from '../../db/repositories/deployment.repository.js';
import { findAppById } from '../../db/repositories/import.repository.js';
import { removeExpired, type DeployTarget } from '../../pipeline/index.js';
import { createDepotOrigin } from '../../publish/origin.js';
import type { TaskHandler } from '../worker.js';
import type { CleanupPayload } from './deploy.js';
import { DEPOT_TARGET } from './deploy.js';
import type { ImportDeps } from './import-deps.js';

/**
 * The `cleanup` task: runs once the grace period after a deploy has passed (its `run_after`) and
 * removes what the new release no longer needs (planCleanup's prefixes) from the depot and the
 * deployments published to. Deleting what is gone is fine, so it is safe to run twice. A
 * deployment deleted meanwhile is skipped (its files went with it); a deleted app's files went
 * with the app, so nothing is done. Failures are retried (DeployError is retryable).
 */
export function cleanupHandler(deps: ImportDeps): TaskHandler {
  return async ({ payload, signal }) => {
    const p = payload as CleanupPayload;
    if (!(await findAppById(deps.db, p.appId))) return { skipped: 'the app was deleted' };
    let deleted = 0;
    if (p.depot.length > 0) {
      const depot: DeployTarget = { deployment: DEPOT_TARGET, origin: createDepotOrigin(deps.blobStore, deps.depotPrefix) };
      for (const r of await removeExpired([depot], p.depot, signal)) deleted += r.deleted;
    }
    if (p.origins.length > 0 && p.deployments.length > 0) {
      const rows = await findDeploymentsByNames(deps.db, p.orgId, p.deployments);
      const targets: DeployTarget[] = rows.map((row) => ({ deployment: row.name, origin: deps.openDeployment(row) }));
      try {
        for (const r of await removeExpired(targets, p.origins, signal)) deleted += r.deleted;
      } finally {
        for (const t of targets) await t.origin.close().catch(() => undefined);
      }
    }
    return { deleted };
  };
}
