import { findOrgTask, listOrgTasks } from '../db/repositories/task.repository.js';
import type { TaskRow, TaskStatus } from '../db/database.js';
import { AppError, invalidParam, missingParam, notFound } from '../domain/errors.js';
import { findImport, setUploadState } from '../db/repositories/import.repository.js';
import { refreshProcessing, setProcessing } from '../db/repositories/app.repository.js';
import { parseListQuery, project, type Page, type RawListQuery } from '../domain/list.js';
import { isImportTaskType } from '../domain/task-types.js';
import { acknowledgeTaskWarnings, expireSubmittedTask, findTask, retryFailedTask } from '../queue/tasks.queue.js';
import { requireAdmin, requirePermission, type Principal, type ServiceDeps } from './context.js';
import type { TaskDto } from '@rockit/contract';
import { toTaskDto } from './mappers.js';
import type { ImportRow } from '../db/import-tables.js';
import type { BlobStore } from '../storage/blob-store.js';
import { discardUpload } from '../storage/part-writer.js';
import type { TaskQueue } from '../queue/task-queue.js';

export interface TaskFilterInput {
  appName?: string;
  type?: string;
  status?: TaskStatus;
  /** UNIX seconds. */
  since?: number;
  until?: number;
}

const TASK_LIST = {
  orderable: ['name', 'type', 'status', 'appName', 'created', 'started', 'ended'],
  fields: ['name', 'type', 'status', 'appName', 'buildId', 'progress', 'attempts', 'warnings', 'error', 'result', 'created', 'started', 'ended'],
  defaultOrder: [{ field: 'created', desc: true }],
} as const;
const TASK_COLUMNS: Record<string, string> = {
  name: 'name', type: 'type', status: 'status', appName: 'app_name', created: 'created_ms', started: 'started_ms', ended: 'ended_ms',
};

/** Tasks of the caller's org (`tasks.read`); org-less tasks (hello) are visible to the admin only. */
export class TaskService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly opts: {
      /** Where uploads are received: an expired upload's stored parts are dropped there. */
      blobStore: BlobStore;
      /** The task queue: a re-submitted task wakes the local worker once committed. */
      queue: TaskQueue;
      /** Submits trace processing of an app (`traces` trigger; TrainingService.trigger). */
      traces?: (orgId: string, appName: string) => Promise<TaskRow>;
    },
  ) {}

  /**
   * PATCH /be/v1/tasks (`tasks.update`): `acknowledge` marks every warning acknowledged (any task);
   * `expire` ends an upload task that waits for its PUT (or whose PUT broke off) — `expired`, the
   * upload URL stops working. Errors: not-found; invalid-state (expire of anything else);
   * invalid-param when neither or both are given.
   */
  async patch(auth: Principal, input: { name: string; acknowledge?: boolean; expire?: boolean }): Promise<TaskDto> {
    const user = requirePermission(auth, 'tasks', 'update');
    if (input.acknowledge !== true && input.expire !== true) throw invalidParam('acknowledge', 'or expire must be true');
    if (input.acknowledge === true && input.expire === true) throw invalidParam('expire', 'cannot be combined with acknowledge');
    const { db, clock } = this.deps;
    const row = await findOrgTask(db, user.orgId, input.name);
    if (!row) throw notFound('task', input.name);
    if (input.acknowledge) {
      await acknowledgeTaskWarnings(db, row, clock.now());
    } else {
      let expiredUpload: ImportRow | undefined;
      const ended = await db.transaction().execute(async (trx) => {
        const imp = row.type === 'dltar' ? await findImport(trx, row.name) : undefined;
        if (!imp || imp.source !== 'upload') return false;
        expiredUpload = imp;
        if (!(await setUploadState(trx, row.name, 'waiting', 'expired'))) return false;
        if (!(await expireSubmittedTask(trx, row.name, clock.now(), { message: 'the upload was expired by a user' }))) {
          throw new AppError('invalid-state', `task ${row.name} is ${row.status}: only a task waiting for its upload can be expired`, { task: row.name });
        }
        if (row.app_name !== null) await refreshProcessing(trx, user.orgId, row.app_name);
        return true;
      });
      if (!ended) throw new AppError('invalid-state', `task ${row.name} is not an upload waiting for its PUT`, { task: row.name });
      const imp: ImportRow | undefined = expiredUpload;
      if (imp) await discardUpload(this.opts.blobStore, imp.tar_key, imp.upload_id);
    }
    const after = await findOrgTask(db, user.orgId, input.name);
    if (!after) throw notFound('task', input.name);
    return toTaskDto(after);
  }

  /**
   * POST /be/v1/trigger (`tasks.execute`). `retry`: a failed task runs again with fresh attempts
   * (a deploy after its deployment was fixed clears the app's error state when it succeeds).
   * `traces`: processes the app's traces now (a `trace` task; api.md §10). Errors: missing-param
   * `taskName` / `appName`; not-found; invalid-state when the task did not fail (retry), or the app
   * has no published build, no traces or trace processing under way (traces); app-locked.
   */
  async trigger(auth: Principal, input: { type: string; taskName?: string; appName?: string }): Promise<TaskDto> {
    const user = requirePermission(auth, 'tasks', 'execute');
    if (input.type === 'traces') {
      if (input.taskName !== undefined) throw invalidParam('taskName', "is not a field of the 'traces' trigger");
      if (input.appName === undefined) throw missingParam('appName');
      if (!this.opts.traces) throw invalidParam('type', "'traces' is not available on this server");
      return toTaskDto(await this.opts.traces(user.orgId, input.appName));
    }
    if (input.type !== 'retry') throw invalidParam('type', `must be 'retry' or 'traces'`);
    if (input.taskName === undefined) throw missingParam('taskName');
    const { db, clock } = this.deps;
    const row = await findOrgTask(db, user.orgId, input.taskName);
    if (!row) throw notFound('task', input.taskName);
    // The answer shows the task as resubmitted (read in the same transaction): a worker woken
    // below may claim it at once, which the next GET shows.
    const retried = await this.opts.queue.transaction(async (trx) => {
      if (!(await retryFailedTask(trx, row.name, clock.now()))) return undefined;
      if (row.app_name !== null && isImportTaskType(row.type)) {
        const imp = await findImport(trx, row.type === 'dltar' ? row.name : ((JSON.parse(row.payload) as { importTask?: string }).importTask ?? ''));
        if (imp) await setProcessing(trx, imp.app_id, clock.now());
      }
      return findOrgTask(trx, user.orgId, row.name);
    });
    if (!retried) throw new AppError('invalid-state', `task ${row.name} is ${row.status}: only a failed task can be retried`, { task: row.name });
    return toTaskDto(retried);
  }

  async list(auth: Principal, f: TaskFilterInput, raw: RawListQuery): Promise<Page<TaskDto>> {
    const user = requirePermission(auth, 'tasks', 'read');
    const q = parseListQuery(raw, TASK_LIST);
    const { total, rows } = await listOrgTasks(
      this.deps.db,
      user.orgId,
      {
        appName: f.appName, type: f.type, status: f.status,
        sinceMs: f.since !== undefined ? f.since * 1000 : undefined,
        untilMs: f.until !== undefined ? f.until * 1000 : undefined,
      },
      { offset: q.offset, limit: q.limit, order: q.order.map((o) => ({ column: TASK_COLUMNS[o.field], desc: o.desc })) },
    );
    return { total, offset: q.offset, limit: q.limit, items: rows.map((r) => project(toTaskDto(r), q.fields)) };
  }

  async get(auth: Principal, name: string): Promise<TaskDto> {
    const user = requirePermission(auth, 'tasks', 'read');
    const row = await findOrgTask(this.deps.db, user.orgId, name);
    if (!row) throw notFound('task', name);
    return toTaskDto(row);
  }

  /** Any task, for the installation admin (GET /adm/v1/tasks/{name}). */
  async getAsAdmin(auth: Principal, name: string): Promise<TaskDto> {
    requireAdmin(auth);
    const row = await findTask(this.deps.db, name);
    if (!row) throw notFound('task', name);
    return toTaskDto(row);
  }
}
