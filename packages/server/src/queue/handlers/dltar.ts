import { claimFollowUp, findAppById, findImport, orgNameOf, refreshProcessing, setUploadState } from '../../db/repositories/import.repository.js';
import { obtainTar } from '../../pipeline/index.js';
import { s3ImportKey } from '../../pipeline/s3-import-scope.js';
import { discardUpload } from '../../storage/part-writer.js';
import { enqueueTask } from '../tasks.queue.js';
import { PermanentTaskError, TaskEndedError, type TaskHandler } from '../worker.js';
import { appQueueKey, isFinalAttempt, type ImportDeps } from './import-deps.js';

/**
 * The `dltar` task (api.md §7.2): obtains and verifies the import's tar (download, or the upload
 * the client PUT), then enqueues `mkraw` in the same transaction that records it — once, even when
 * this handler runs twice. An upload task is claimed at its deadline when the PUT never came (or
 * early, when it did): then the task ends `expired`. Failures are StepErrors (task `error` =
 * `toTaskError()`); on the final failure the app's `processing` flag is recomputed.
 */
export function dltarHandler(deps: ImportDeps): TaskHandler {
  return async ({ task, signal, progress }) => {
    const { db, clock } = deps;
    const imp = await findImport(db, task.name);
    const app = imp && (await findAppById(db, imp.app_id));
    const orgName = imp && (await orgNameOf(db, imp.org_id));
    if (!imp || !app || orgName === undefined) throw new PermanentTaskError('the app of this import was deleted');

    if (imp.source === 'upload' && imp.upload_state !== 'received') {
      const expired = imp.upload_state === 'expired' || (await setUploadState(db, imp.task_name, 'waiting', 'expired'));
      if (expired) {
        await discardUpload(deps.blobStore, imp.tar_key, (await findImport(db, imp.task_name))?.upload_id ?? imp.upload_id);
        await refreshProcessing(db, imp.org_id, app.name, task.name);
        throw new TaskEndedError('expired', 'the build was not uploaded before the upload URL expired');
      }
    }

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
      let nextTask: string | null = null;
      await db.transaction().execute(async (trx) => {
        const now = clock.now();
        const mkraw = await enqueueTask(trx, now, {
          type: 'mkraw', payload: { importTask: imp.task_name }, orgId: imp.org_id, appName: app.name, queueKey: appQueueKey(app.id), maxAttempts: deps.maxAttempts,
        });
        // A second run finds the follow-up linked: the row it just inserted is rolled back.
        if (!(await claimFollowUp(trx, imp.task_name, 'mkraw_task', mkraw.name))) throw new AlreadyLinked();
        nextTask = mkraw.name;
      }).catch((e) => {
        if (!(e instanceof AlreadyLinked)) throw e;
      });
      nextTask ??= (await findImport(db, imp.task_name))?.mkraw_task ?? null;
      deps.poke();
      // nextTask names the follow-up so that clients (rockit push) can follow the pipeline exactly.
      return { sizeBytes: got.sizeBytes, sha256: got.sha256, compression: got.compression, nextTask };
    } catch (err) {
      if (isFinalAttempt(task, err)) await refreshProcessing(db, imp.org_id, app.name, task.name);
      throw err;
    }
  };
}

/** Rolls back a follow-up enqueue that an earlier run of the same task already made. */
export class AlreadyLinked extends Error {
  constructor() {
    super('follow-up task already enqueued');
    this.name = 'AlreadyLinked';
  }
}
