import type { ImportRow } from '../db/import-tables.js';
import { findApp, setProcessing } from '../db/repositories/app.repository.js';
import { readyBuilds } from '../db/repositories/build.repository.js';
import { insertImport } from '../db/repositories/import.repository.js';
import { toUnixSeconds } from '../domain/clock.js';
import { AppError, invalidParam, notFound } from '../domain/errors.js';
import { randomSecret, sha256Hex } from '../domain/secrets.js';
import { s3ImportKey, s3ImportRefusal, type S3ImportScope } from '../pipeline/s3-import-scope.js';
import { importDeltaKey, importTarKey } from '../publish/layout.js';
import { knownChunkIds } from '../pipeline/delta.js';
import type { BlobStore } from '../storage/blob-store.js';

import { emitEvent } from '../webhooks/emit.js';
import { requirePermission, type Principal, type ServiceDeps } from './context.js';
import { MAX_CHUNK_IDS, type KnownChunksInput, type SubmitBuildInput, type TaskDto } from '@rockit/contract';
import { lockedMessage, toTaskDto } from './mappers.js';
import type { TaskQueue } from '../queue/task-queue.js';

export interface SubmittedBuild {
  task: TaskDto;
  /** For uploads: where to PUT the tar (path and query; the HTTP layer makes it absolute), until `expires` (UNIX seconds). */
  upload?: { path: string; method: 'PUT'; expires: number };
}

export interface BuildServiceOptions {
  uploadExpirySeconds: number;
  /** The task queue: the import's task wakes the local worker once committed. */
  queue: TaskQueue;
  /** Cluster mode: where s3:// import URLs may point (each org's `incoming/<orgName>/`); absent = s3:// refused. */
  s3ImportScope?: S3ImportScope;
  /** The depot inside the blob store, where `knownChunks` looks chunks up (delta pushes); absent = no chunk is known. */
  depot?: { blobStore: BlobStore; prefix: string };
}

const UPLOAD_TOKEN_PREFIX = 'rkup_';

/**
 * Imports of native builds (api.md §7.2, `apps.update`). An import is a chain of tasks
 * dltar → mkraw → deploy; this service starts it (UploadService receives the uploads).
 */
export class BuildService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly opts: BuildServiceOptions,
  ) {}

  /**
   * Starts an import: in one transaction the dltar task, the import row (with the hash of a
   * one-time upload token when there is no `url`) and the app's `processing` flag. A download
   * task runs at once; an upload task runs when its PUT completes, or at the upload deadline
   * (then it ends `expired`). Errors: not-found (app), app-locked (error state after a failed
   * deploy), invalid-param (`url` scheme, an s3:// URL outside the org's import prefix, `sha256`, `buildName`).
   */
  async submit(auth: Principal, input: SubmitBuildInput): Promise<SubmittedBuild> {
    const user = requirePermission(auth, 'apps', 'update');
    if (input.url !== undefined && !/^(https?|s3):\/\//i.test(input.url)) throw invalidParam('url', 'must be an http, https or s3 URL');
    // By the URL's text only, never by asking S3: a missing object and a forbidden one answer alike.
    if (input.url !== undefined && /^s3:/i.test(input.url) && s3ImportKey(input.url, this.opts.s3ImportScope, user.orgName) === null) {
      throw invalidParam('url', s3ImportRefusal(this.opts.s3ImportScope, user.orgName));
    }
    if (input.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(input.sha256)) throw invalidParam('sha256', 'must be 64 hex digits');
    // A delta is uploaded, and its size and digest are not the tar's: announcing them makes no sense.
    if (input.delta === true && input.url !== undefined) throw invalidParam('delta', 'a delta is uploaded: leave out url');
    if (input.delta === true && (input.size !== undefined || input.sha256 !== undefined)) throw invalidParam('delta', 'a delta import takes no size or sha256');
    const { clock } = this.deps;
    const now = clock.now();
    const token = input.url === undefined ? randomSecret(UPLOAD_TOKEN_PREFIX) : undefined;
    const expiresMs = now + this.opts.uploadExpirySeconds * 1000;
    const task = await this.opts.queue.transaction(async (trx) => {
      const app = await findApp(trx, user.orgId, input.appName);
      if (!app) throw notFound('app', input.appName);
      if (Number(app.locked) !== 0) {
        const since = app.error ? (JSON.parse(app.error) as { task?: string }) : {};
        throw new AppError('app-locked', lockedMessage(app.name, app.error !== null), {
          ...(since.task ? { task: since.task } : {}),
        });
      }
      const row = await this.opts.queue.enqueue(trx, {
        type: 'dltar', payload: { ...(input.live === false ? { live: false } : {}), ...(input.delta === true ? { delta: true } : {}) }, orgId: user.orgId, appName: app.name,
        // An upload waits for its PUT; claimed at the deadline, it ends `expired`.
        runAfterMs: token === undefined ? now : expiresMs,
      });
      const imp: ImportRow = {
        task_name: row.name, org_id: user.orgId, app_id: app.id, source: token === undefined ? 'url' : 'upload', url: input.url ?? null,
        size_bytes: input.size ?? null, sha256: input.sha256?.toLowerCase() ?? null, build_name: input.buildName ?? null,
        upload_token_hash: token === undefined ? null : sha256Hex(token), upload_state: token === undefined ? null : 'waiting',
        expires_ms: token === undefined ? null : expiresMs, tar_key: input.delta === true ? importDeltaKey(user.orgId, row.name) : importTarKey(user.orgId, row.name), build_id: null, dxf_name: null,
        manifest_file: null, mkraw_task: null, deploy_task: null, created_ms: now,
        upload_id: null, upload_parts: null, upload_part_bytes: null, upload_received_bytes: 0, upload_total_bytes: null,
        upload_writer: null, upload_writer_until_ms: null, upload_sha256: null, upload_compression: null,
      };
      await insertImport(trx, imp);
      await setProcessing(trx, app.id, now);
      await emitEvent(trx, { type: 'dltar', event: 'submit', orgName: user.orgName, appName: app.name, taskName: row.name, ...(input.buildName ? { buildName: input.buildName } : {}) }, now);
      return row;
    });
    const out: SubmittedBuild = { task: toTaskDto(task) };
    if (token !== undefined) {
      out.upload = { path: `/be/v1/uploads/${task.name}?token=${token}`, method: 'PUT', expires: toUnixSeconds(expiresMs) };
    }
    return out;
  }

  /**
   * Which of `ids` the app's kept builds hold (`POST /be/v1/builds/chunks`, `apps.update`; delta
   * pushes): looked up in the manifests of their images in the depot, counting only images whose
   * packs are all there. Only the caller's own app is consulted, so another org's chunks are never
   * known. Errors: forbidden, not-found (app), invalid-param (`ids`: more than MAX_CHUNK_IDS, or not
   * 64 lower-case hex digits).
   */
  async knownChunks(auth: Principal, input: KnownChunksInput): Promise<string[]> {
    const user = requirePermission(auth, 'apps', 'update');
    if (input.ids.length > MAX_CHUNK_IDS) throw invalidParam('ids', `at most ${MAX_CHUNK_IDS} ids per request`);
    if (!input.ids.every((id) => /^[0-9a-f]{64}$/.test(id))) throw invalidParam('ids', 'each id must be 64 lower-case hex digits');
    const app = await findApp(this.deps.db, user.orgId, input.appName);
    if (!app) throw notFound('app', input.appName);
    const depot = this.opts.depot;
    if (!depot || input.ids.length === 0) return [];
    const builds = (await readyBuilds(this.deps.db, app.id)).filter((b) => b.dxf_name !== null);
    return knownChunkIds(
      { blobStore: depot.blobStore, depotPrefix: depot.prefix, orgName: user.orgName, appName: app.name, builds: builds.map((b) => ({ buildId: Number(b.build_id), dxfName: b.dxf_name! })) },
      input.ids,
    );
  }
}
