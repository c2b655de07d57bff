import type { AppRow } from '../db/app-tables.js';
import type { ImportRow } from '../db/import-tables.js';
import { claimFollowUp, findImport, setUploadState } from '../db/repositories/import.repository.js';
import { refreshProcessing } from '../db/repositories/app.repository.js';
import { readyBuilds } from '../db/repositories/build.repository.js';
import { assembleTarFromDelta, obtainTar } from '../pipeline/index.js';
import { importTarKey } from '../publish/layout.js';
import { s3ImportKey } from '../pipeline/s3-import-scope.js';
import { discardUpload } from '../storage/part-writer.js';
import { deleteQuietly } from '../pipeline/store-io.js';
import { TaskEndedError, type TaskHandler } from '../queue/worker.js';
import { withImportContext } from './import-context.js';
import { appQueueKey } from '../queue/task-types.js';
import { isFinalAttempt, type ImportDeps } from './import-deps.js';

/**
 * The `dltar` task (api.md §7.2): obtains and verifies the import's tar (download, or the upload
 * the client PUT), then enqueues `mkraw` in the same transaction that records it — once, even when
 * this handler runs twice. An upload task is claimed at its deadline when the PUT never came (or
 * early, when it did): then the task ends `expired`. Failures are StepErrors (task `error` =
 * `toTaskError()`); on the final failure the app's `processing` flag is recomputed.
 */
export function dltarHandler(deps: ImportDeps): TaskHandler {
  // The import is the dltar task's own: named like it.
  return withImportContext(deps.db, (ctx) => ctx.task.name, async ({ task, payload, signal, progress }, { imp, app, orgName }) => {
    const { db } = deps;

    if (imp.source === 'upload' && imp.upload_state !== 'received') {
      const expired = imp.upload_state === 'expired' || (await setUploadState(db, imp.task_name, 'waiting', 'expired'));
      if (expired) {
        await discardUpload(deps.blobStore, imp.tar_key, (await findImport(db, imp.task_name))?.upload_id ?? imp.upload_id);
        await refreshProcessing(db, imp.org_id, app.name, task.name);
        throw new TaskEndedError('expired', 'the build was not uploaded before the upload URL expired');
      }
    }

    if ((payload as { delta?: unknown } | null)?.delta === true) return dltarDelta(deps, imp, app, orgName, { task, signal, progress });

    try {
      const got = await obtainTar({
        ...(imp.source === 'url' ? { url: imp.url!, destKey: imp.tar_key } : { uploadKey: imp.tar_key }),
        ...(imp.size_bytes !== null ? { sizeBytes: Number(imp.size_bytes) } : {}),
        ...(imp.sha256 !== null ? { sha256: imp.sha256 } : {}),
        ...(imp.upload_sha256 !== null && imp.upload_compression !== null
          ? { uploadDigest: { sha256: imp.upload_sha256, compression: imp.upload_compression } }
          : {}),
        ...(deps.addressPolicy ? { addressPolicy: deps.addressPolicy } : {}),
        ...(deps.s3ImportScope ? { s3Source: { keyOf: (url: string) => s3ImportKey(url, deps.s3ImportScope, orgName), store: deps.blobStore } } : {}),
        blobStore: deps.blobStore,
        maxBytes: deps.maxUploadBytes,
        signal,
        onProgress: (p) => {
          if (p.fraction !== undefined) progress(p.fraction * 0.99);
        },
      });
      const nextTask = await enqueueMkraw(deps, imp, app, {});
      // nextTask names the follow-up so that clients (rockit push) can follow the pipeline exactly.
      return { sizeBytes: got.sizeBytes, sha256: got.sha256, compression: got.compression, nextTask };
    } catch (err) {
      if (isFinalAttempt(task, err)) await refreshProcessing(db, imp.org_id, app.name, task.name);
      throw err;
    }
  });
}

/** Enqueues the import's mkraw once (a second run finds it linked and returns its name). */
async function enqueueMkraw(deps: ImportDeps, imp: ImportRow, app: AppRow, extra: { tarKey?: string }): Promise<string | null> {
  // The import's `mkraw_task` link is the once-key: a second run finds it set and enqueues nothing.
  const mkraw = await deps.queue.transaction((trx) =>
    deps.queue.enqueueFollowUpOnce(
      trx,
      { type: 'mkraw', payload: { importTask: imp.task_name, ...extra }, orgId: imp.org_id, appName: app.name, queueKey: appQueueKey(app.id) },
      (name) => claimFollowUp(trx, imp.task_name, 'mkraw_task', name),
    ),
  );
  return mkraw?.name ?? (await findImport(deps.db, imp.task_name))?.mkraw_task ?? null;
}

/**
 * dltar of a delta import (issue 13 item 4): the upload at `tar_key` is a delta; the tar is assembled
 * beside it from the delta and the app's kept builds (pipeline/delta.ts) and handed to mkraw by key.
 * A run after mkraw was enqueued does nothing (the delta is gone by then). On the final failure the
 * delta is deleted: the client pushes the whole tar instead.
 */
async function dltarDelta(
  deps: ImportDeps, imp: ImportRow, app: AppRow, orgName: string,
  ctx: { task: Parameters<TaskHandler>[0]['task']; signal: AbortSignal; progress: (f: number) => void },
): Promise<Record<string, unknown>> {
  if (imp.mkraw_task !== null) return { nextTask: imp.mkraw_task, delta: true, alreadyDone: true };
  const tarKey = importTarKey(imp.org_id, imp.task_name);
  try {
    const builds = (await readyBuilds(deps.db, app.id)).filter((b) => b.dxf_name !== null);
    const got = await assembleTarFromDelta({
      blobStore: deps.blobStore, depotPrefix: deps.depotPrefix + '/', orgName, appName: app.name,
      builds: builds.map((b) => ({ buildId: Number(b.build_id), dxfName: b.dxf_name! })),
      deltaKey: imp.tar_key, tarKey, maxBytes: deps.maxUploadBytes,
      ...(deps.buildLimits ? { limits: deps.buildLimits } : {}),
      ...(deps.threads !== undefined ? { threads: deps.threads } : {}),
      signal: ctx.signal,
      onProgress: (f) => ctx.progress(f * 0.99),
    });
    const nextTask = await enqueueMkraw(deps, imp, app, { tarKey });
    return { sizeBytes: got.sizeBytes, sha256: got.sha256, compression: 'none', delta: true, nextTask };
  } catch (err) {
    if (isFinalAttempt(ctx.task, err)) {
      await deleteQuietly(deps.blobStore, imp.tar_key);
      await deleteQuietly(deps.blobStore, tarKey);
      await refreshProcessing(deps.db, imp.org_id, app.name, ctx.task.name);
    }
    throw err;
  }
}
