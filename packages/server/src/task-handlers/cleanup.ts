import { findDeploymentsByNames } from '../db/repositories/deployment.repository.js';
import { findAppById } from '../db/repositories/app.repository.js';
import { buildsAndPatchesOfApp } from '../db/repositories/build.repository.js';
import type { AppRow } from '../db/app-tables.js';
import { dxfBuildPrefix, patchTargetPrefix, removeExpired, type DeployTarget } from '../pipeline/index.js';
import { patchPrefix } from '../publish/layout.js';
import { createDepotOrigin } from '../publish/origin.js';
import type { TaskHandler } from '../queue/worker.js';
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
    const app = await findAppById(deps.db, p.appId);
    if (!app) return { skipped: 'the app was deleted' };
    // Release control: a set-live or rollback since the plan was made may need what it names again.
    // Judged now: the depot keeps every kept build's image and the patches still recorded; origins
    // keep the live build's image and patches.
    const guard = await protectedPrefixes(deps, app, p);
    p.depot = p.depot.filter((x) => !guard.depot.some((r) => r.startsWith(x) || x.startsWith(r)));
    p.origins = p.origins.filter((x) => !guard.origins.some((r) => r.startsWith(x) || x.startsWith(r)));
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

/** What must stay, from the database as it is now (kept builds, recorded patches, the live build). */
async function protectedPrefixes(deps: ImportDeps, app: AppRow, p: CleanupPayload): Promise<{ depot: string[]; origins: string[] }> {
  const { buildIds, patches } = await buildsAndPatchesOfApp(deps.db, app.id);
  const depot = [
    ...buildIds.map((id) => dxfBuildPrefix(p.orgName, p.appName, id)),
    ...patches.map((x) => patchPrefix(p.orgName, p.appName, x.toBuildId, x.fromBuildId)),
  ];
  const live = app.i_cur_build === null ? null : Number(app.i_cur_build);
  const origins = live === null ? [] : [dxfBuildPrefix(p.orgName, p.appName, live), patchTargetPrefix(p.orgName, p.appName, live)];
  return { depot, origins };
}
