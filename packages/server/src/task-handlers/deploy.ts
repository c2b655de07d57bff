import type { AppRow, BuildRow, DeploymentRow } from '../db/app-tables.js';
import { recordDeploymentStatus, recordPublication } from '../db/repositories/deployment.repository.js';
import { findAppById, markAppError, refreshProcessing, targetDeploymentsOfApp } from '../db/repositories/app.repository.js';
import { markPublished, patchesTo, patchTargetsOtherThan, readyBuild } from '../db/repositories/build.repository.js';
import { orgNameOf } from '../db/repositories/org.repository.js';
import { findImport, findImportOfBuild } from '../db/repositories/import.repository.js';
import { toUnixSeconds } from '../domain/clock.js';
import { DeployError, StepError, buildRelease, deployRelease, patchTargetPrefix, planCleanup, readPublishedRelease, type DeployTarget } from '../pipeline/index.js';
import { createDepotOrigin, type Origin } from '../publish/origin.js';
import { PermanentTaskError, type TaskHandler } from '../queue/worker.js';
import { findTask } from '../queue/tasks.queue.js';
import { FinalDeployFailure, isFinalAttempt, type ImportDeps } from './import-deps.js';

/** Name of the depot as a deploy target (results, errors). */
export const DEPOT_TARGET = 'depot';

export interface CleanupPayload {
  orgId: string;
  appId: string;
  orgName: string;
  appName: string;
  /** Prefixes to remove from the deployments below (relative to their origin prefix). */
  origins: string[];
  /** Prefixes to remove from the depot. */
  depot: string[];
  deployments: string[];
}

/**
 * A `deploy` task's payload: the import whose build it publishes (`importTask`), or a set-live of a
 * kept build (`setLive`, PATCH /be/v1/apps `iCurBuild`: release control, also for rollbacks).
 */
export interface DeployPayload {
  importTask?: string;
  setLive?: { appId: string; buildId: number };
}

interface ResolvedDeploy {
  app: AppRow;
  orgId: string;
  orgName: string;
  build: BuildRow;
  manifestFile: string;
  /** false: a staged import (release.json is left alone). */
  live: boolean;
}

/**
 * What a deploy publishes: for an import, its own build (live unless the import asked
 * `live: false`); for a set-live, the named build. `gone` when there is nothing (any more) to publish.
 */
async function resolveDeploy(deps: ImportDeps, p: DeployPayload): Promise<ResolvedDeploy | { gone: string; orgId?: string; appName?: string }> {
  const { db } = deps;
  let app: AppRow | undefined;
  let buildId: number | null = null;
  let live = true;
  if (p.setLive) {
    app = await findAppById(db, p.setLive.appId);
    if (!app) return { gone: 'the app was deleted' };
    buildId = p.setLive.buildId;
  } else {
    const imp = p.importTask === undefined ? undefined : await findImport(db, p.importTask);
    app = imp && (await findAppById(db, imp.app_id));
    if (!imp || !app) return { gone: 'the app of this import was deleted' };
    live = await importIsLive(db, imp.task_name);
    buildId = imp.build_id === null ? null : Number(imp.build_id);
  }
  const orgId = app.org_id;
  const orgName = await orgNameOf(db, orgId);
  if (orgName === undefined) return { gone: 'the app was deleted' };
  const build = buildId === null ? undefined : await readyBuild(db, app.id, buildId);
  const source = build && (await findImportOfBuild(db, app.id, buildId!));
  if (!build || !source || source.manifest_file === null || build.dxf_name === null) {
    return { gone: `build ${buildId ?? '?'} of app ${app.name} is not kept and ready any more`, orgId, appName: app.name };
  }
  return { app, orgId, orgName, build, manifestFile: source.manifest_file, live };
}

/** Whether the import (its dltar task's payload) asked to go live; absent = true. */
async function importIsLive(db: ImportDeps['db'], importTask: string): Promise<boolean> {
  const row = await findTask(db, importTask);
  if (!row?.payload) return true;
  try {
    return (JSON.parse(row.payload) as { live?: unknown }).live !== false;
  } catch {
    return true;
  }
}

/**
 * The `deploy` task (api.md §7.2, §7.3): publishes the app's newest ready build — release.json
 * last — to the depot and to every deployment of the app, so a deploy that runs after a newer
 * mkraw publishes the newer build (deploys are "make the origins current", hence idempotent).
 * Success: apps.iCurBuild/dxfName set, error state cleared, deployments marked ok with their
 * published bytes, and a `cleanup` task enqueued for after the grace period, all in one
 * transaction. Failure of a deployment: the app's `error` = { task, type: 'deploy', message, since }
 * and `locked`; the failing deployments are marked `error`.
 */
export function deployHandler(deps: ImportDeps): TaskHandler {
  return async ({ task, payload, signal, progress }) => {
    const { db, clock } = deps;
    const p = payload as DeployPayload;
    const target = await resolveDeploy(deps, p);
    if ('gone' in target) {
      if (target.orgId && target.appName) await refreshProcessing(db, target.orgId, target.appName, task.name);
      throw new PermanentTaskError(target.gone);
    }
    const { app, orgId, orgName, build, manifestFile, live } = target;
    const buildId = Number(build.build_id);
    // The patches leading TO the build that are still kept (rows of `patches`): a build made live
    // again after another one replaced it has none (their files went with the grace cleanup).
    const patches = await patchesTo(db, app.id, buildId);
    const release = buildRelease({
      orgName, appName: app.name, buildId, buildName: build.build_name ?? String(buildId), dxfName: build.dxf_name!,
      manifestFile, imageSizeBytes: Number(build.image_bytes),
      patches: patches.map((x) => ({ fromBuildId: Number(x.from_build_id), sizeBytes: Number(x.size_bytes) })),
      created: toUnixSeconds(clock.now()),
    });

    const depot = createDepotOrigin(deps.blobStore, deps.depotPrefix);
    const rows = await targetDeploymentsOfApp(db, orgId, app.id);
    const opened: Array<{ row: DeploymentRow; origin: Origin }> = [];
    const unopened: Array<{ row: DeploymentRow; message: string }> = [];
    for (const row of rows) {
      try {
        opened.push({ row, origin: deps.openDeployment(row) });
      } catch (err) {
        unopened.push({ row, message: `deployment ${row.name}: ${err instanceof Error && err.name === 'StorageError' ? err.message : 'its settings cannot be opened'}` });
      }
    }
    try {
      if (unopened.length > 0) {
        throw new StepError('deploy-failed', unopened[0].message, { deployment: unopened[0].row.name, retryable: false });
      }
      const previous = await readPublishedRelease(depot.store, orgName, app.name).catch(() => null);
      const targets: DeployTarget[] = [{ deployment: DEPOT_TARGET, origin: depot }, ...opened.map((o) => ({ deployment: o.row.name, origin: o.origin }))];
      const results = await deployRelease({
        release, depot: { store: deps.blobStore, prefix: deps.depotPrefix + '/' }, targets, signal, writeRelease: live,
        onProgress: (x) => progress(x.fraction * 0.99),
      });
      const now = clock.now();
      const deploymentsResult = results.map((r) => ({ deployment: r.deployment, filesCopied: r.filesCopied, filesSkipped: r.filesSkipped, bytesCopied: r.bytesCopied }));
      if (!live) {
        // Staged: the image and patches are on every origin, release.json still names the live build.
        await db.transaction().execute(async (trx) => {
          for (const o of opened) await recordDeploymentStatus(trx, o.row.id, 'ok', `published ${app.name} build ${buildId} (staged)`, now);
          await refreshProcessing(trx, orgId, app.name, task.name);
        });
        return { buildId, dxfName: build.dxf_name, live: false, deployments: deploymentsResult };
      }
      const plan = planCleanup(previous, release, toUnixSeconds(now), deps.gracePeriodSeconds);
      // Patches to other builds (a staged build's, a replaced build's) are dropped with markPublished
      // below: their files go too, after the grace period (the cleanup re-checks what is kept then).
      for (const staleBuildId of await patchTargetsOtherThan(db, app.id, buildId)) {
        const prefix = patchTargetPrefix(orgName, app.name, staleBuildId);
        if (!plan.origins.includes(prefix)) plan.origins.push(prefix);
        if (!plan.depot.includes(prefix)) plan.depot.push(prefix);
      }
      const publishedBytes = release.image.sizeBytes + release.patches.reduce((a, p) => a + p.sizeBytes, 0);
      await db.transaction().execute(async (trx) => {
        await markPublished(trx, app.id, buildId, build.dxf_name!, now);
        for (const o of opened) {
          await recordDeploymentStatus(trx, o.row.id, 'ok', `published ${app.name} build ${buildId}`, now);
          await recordPublication(trx, app.id, o.row.id, publishedBytes, now);
        }
        if (plan.origins.length > 0 || plan.depot.length > 0) {
          const cleanup: CleanupPayload = {
            orgId: orgId, appId: app.id, orgName, appName: app.name, origins: plan.origins, depot: plan.depot,
            deployments: opened.map((o) => o.row.name),
          };
          await deps.queue.enqueue(trx, {
            type: 'cleanup', payload: cleanup, orgId: orgId, appName: app.name, buildId,
            runAfterMs: plan.notBefore * 1000,
          });
        }
        await refreshProcessing(trx, orgId, app.name, task.name);
      });
      return { buildId, dxfName: build.dxf_name, live: true, deployments: deploymentsResult };
    } catch (err) {
      const deployFailed = err instanceof StepError && err.code === 'deploy-failed';
      if (deployFailed || isFinalAttempt(task, err)) {
        const now = clock.now();
        const message = err instanceof Error ? err.message : String(err);
        await db.transaction().execute(async (trx) => {
          const failedNames = new Set<string>(unopened.map((u) => u.row.name));
          if (err instanceof DeployError) {
            for (const r of err.results) if (!r.ok) failedNames.add(r.deployment);
          } else if (deployFailed && (err as StepError).deployment) {
            failedNames.add((err as StepError).deployment!);
          }
          for (const row of rows) {
            if (!failedNames.has(row.name)) continue;
            const own = err instanceof DeployError ? err.results.find((r) => r.deployment === row.name)?.error?.message : undefined;
            await recordDeploymentStatus(trx, row.id, 'error', own ?? unopened.find((u) => u.row.name === row.name)?.message ?? message, now);
          }
          await markAppError(trx, app.id, { task: task.name, type: 'deploy', message, since: toUnixSeconds(now) }, now);
          await refreshProcessing(trx, orgId, app.name, task.name);
        });
        if (deployFailed) throw new FinalDeployFailure(err as StepError);
      }
      throw err;
    } finally {
      for (const o of opened) await o.origin.close().catch(() => undefined);
    }
  };
}
