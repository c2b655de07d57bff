import { join } from 'node:path';
import type { AppRow, BuildRow } from '../db/app-tables.js';
import { assignBuildId, claimFollowUp, findImport, updateImport } from '../db/repositories/import.repository.js';
import { commitReadyBuild, dropBuild, readyBuild, readyBuildsBefore } from '../db/repositories/build.repository.js';
import { refreshProcessing } from '../db/repositories/app.repository.js';
import { setTasksBuildId, setTaskWarnings } from '../db/repositories/task.repository.js';
import { discardBuild, makeRelease } from '../pipeline/index.js';
import { PermanentTaskError, type TaskHandler } from '../queue/worker.js';
import { withImportContext, type ImportTaskHandler } from './import-context.js';
import { readAppTraces } from './trace.js';
import { appQueueKey } from '../queue/task-types.js';
import { isFinalAttempt, type ImportDeps } from './import-deps.js';

/**
 * The builds a new build gets a patch from: the newest maxBuilds-1 kept builds before it, and always
 * the live one (release control: after staged pushes it may be older; rotation never removes it, so
 * a patch from it is the one launchers need when the new build goes live).
 */
async function patchSources(db: ImportDeps['db'], app: AppRow, buildId: number): Promise<BuildRow[]> {
  const limit = Number(app.max_builds) - 1;
  const newest = await readyBuildsBefore(db, app.id, buildId, limit);
  const live = app.i_cur_build === null ? null : Number(app.i_cur_build);
  if (live === null || live >= buildId || newest.some((b) => Number(b.build_id) === live)) return newest;
  const liveRow = await readyBuild(db, app.id, live);
  if (!liveRow) return newest;
  return [...newest.slice(0, Math.max(0, limit - 1)), liveRow];
}

interface MkrawPayload {
  /** The import (its dltar task). */
  importTask: string;
  /** Where dltar put the tar when it is not the import's `tar_key` (a delta import assembles it beside its upload). */
  tarKey?: string;
}

/**
 * The `mkraw` task (api.md §7.2): gives the import its build id (once), converts the tar into the
 * build's image and a direct patch from each kept previous build (newest maxBuilds-1), then in one
 * transaction records the build as ready, rotates past maxBuilds (the oldest build and every patch
 * starting from it leave), stores the warnings and enqueues `deploy` (once). The tar is deleted
 * after that commit. Runs one at a time per app (queue key). On the final failure the build is
 * dropped (rows and depot files) and the tar deleted.
 */
export function mkrawHandler(deps: ImportDeps): TaskHandler {
  const handler: ImportTaskHandler = async ({ task, payload, signal, progress }, { imp, app, orgName }) => {
    const { db, clock } = deps;
    const { importTask } = payload as MkrawPayload;
    const tarKeyOf = (imp: { tar_key: string }): string => (payload as MkrawPayload).tarKey ?? imp.tar_key;

    // An earlier run committed (and may have deleted the tar): nothing is left to do.
    if (imp.deploy_task !== null && imp.build_id !== null) return { buildId: Number(imp.build_id), dxfName: imp.dxf_name, alreadyDone: true };

    const buildId = await db.transaction().execute(async (trx) => {
      const id = await assignBuildId(trx, importTask, clock.now());
      if (id !== undefined) await setTasksBuildId(trx, [importTask, task.name], id);
      return id;
    });
    if (buildId === undefined) throw new PermanentTaskError('the app of this import was deleted');

    try {
      const previous = await patchSources(db, app, buildId);
      // FastStart: the app's traces (of earlier builds) order the new build's first image.
      const traces = await readAppTraces(deps, imp.org_id, app.id);
      // The image built while this process received the upload, when it holds exactly the tar dltar accepted.
      const prebuilt = (payload as MkrawPayload).tarKey === undefined ? await deps.earlyBuilds?.take(importTask, imp.upload_sha256) : undefined;
      const made = await makeRelease({
        traces,
        ...(prebuilt ? { prebuilt } : {}),
        orgName,
        appName: app.name,
        buildId,
        buildName: imp.build_name ?? String(buildId),
        tarKey: tarKeyOf(imp),
        previous: previous.filter((b) => b.dxf_name !== null).map((b) => ({ buildId: Number(b.build_id), dxfName: b.dxf_name! })),
        blobStore: deps.blobStore,
        depotPrefix: deps.depotPrefix + '/',
        workDir: join(deps.workDir, 'mkraw'),
        signal,
        onProgress: (p) => progress(p.fraction * 0.99),
        ...(deps.threads !== undefined ? { threads: deps.threads } : {}),
        ...(deps.buildLimits ? { limits: deps.buildLimits } : {}),
      }).finally(() => prebuilt?.release());
      let nextTask: string | null = null;
      await deps.queue.transaction(async (trx) => {
        // The import's `deploy_task` link is the once-key; a run that finds it set (a lease
        // take-over raced us) rolls back its whole commit: the other run's stands.
        const deploy = await deps.queue.enqueueFollowUpOnce(
          trx,
          { type: 'deploy', payload: { importTask }, orgId: imp.org_id, appName: app.name, buildId, queueKey: appQueueKey(app.id) },
          (name) => claimFollowUp(trx, importTask, 'deploy_task', name),
        );
        if (!deploy) throw new AlreadyLinked();
        nextTask = deploy.name;
        const now = clock.now();
        await updateImport(trx, importTask, { dxf_name: made.dxfName, manifest_file: made.image.manifest });
        await commitReadyBuild(trx, app.id, Number(app.max_builds), {
          buildId, sizeBytes: made.rawBytes, imageBytes: made.sizeBytes, files: made.files, dxfName: made.dxfName,
          patches: made.patches.map((p) => ({ fromBuildId: p.fromBuildId, sizeBytes: p.sizeBytes })),
        }, now);
        await setTaskWarnings(trx, task.name, made.warnings);
      }).catch((e) => {
        if (!(e instanceof AlreadyLinked)) throw e;
      });
      nextTask ??= (await findImport(db, importTask))?.deploy_task ?? null;
      await deps.blobStore.delete(tarKeyOf(imp)).catch(() => undefined);
      return {
        buildId, dxfName: made.dxfName, sizeBytes: made.sizeBytes, files: made.files, chunks: made.chunks, nextTask,
        orderedByTraces: made.orderedByTraces,
        patches: made.patches.map((p) => ({ fromBuildId: p.fromBuildId, toBuildId: p.toBuildId, sizeBytes: p.sizeBytes })),
      };
    } catch (err) {
      if (isFinalAttempt(task, err)) {
        await db.transaction().execute(async (trx) => {
          await dropBuild(trx, app.id, buildId);
          await refreshProcessing(trx, imp.org_id, app.name, task.name);
        });
        await discardBuild(deps.blobStore, deps.depotPrefix + '/', orgName, app.name, buildId).catch(() => undefined);
        await deps.blobStore.delete(tarKeyOf(imp)).catch(() => undefined);
      }
      throw err;
    }
  };
  // After each run, successful or not: scratch folders of crashed runs and caches of deleted apps go.
  const loaded = withImportContext(deps.db, (ctx) => (ctx.payload as MkrawPayload).importTask, handler);
  return async (ctx) => {
    try {
      return await loaded(ctx);
    } finally {
      await deps.sweepWork?.();
    }
  };
}

/** Rolls back the commit of a run whose follow-up an earlier (or concurrent) run of the same task already enqueued. */
class AlreadyLinked extends Error {
  constructor() {
    super('follow-up task already enqueued');
    this.name = 'AlreadyLinked';
  }
}
