import { MAX_N_TRACES_RELIABLE, type TrainingDto } from '@rockit/contract';
import type { AppRow } from '../db/app-tables.js';
import type { TaskRow } from '../db/database.js';
import { findApp, findAppById } from '../db/repositories/app.repository.js';
import { orgNameOf } from '../db/repositories/org.repository.js';
import type { Executor } from '../db/repositories/common.js';
import { activeTaskOfApp } from '../db/repositories/task.repository.js';
import { countTraces } from '../db/repositories/trace.repository.js';
import {
  findTraining,
  listTrainingsOfOrg,
  lockTraining,
  parseQuality,
  updateTraining,
  DEFAULT_N_TRACES_RELIABLE,
} from '../db/repositories/training.repository.js';
import type { TrainingRow } from '../db/training-tables.js';
import { toUnixSeconds } from '../domain/clock.js';
import { AppError, invalidParam, missingParam, notFound } from '../domain/errors.js';
import { parseListQuery, project, type Page, type RawListQuery } from '../domain/list.js';
import { appQueueKey, type TraceTaskPayload } from '../queue/task-types.js';
import { emitEvent } from '../webhooks/emit.js';
import { requirePermission, type Principal, type ServiceDeps } from './context.js';
import type { TaskQueue } from '../queue/task-queue.js';

/** Task type of trace processing (api.md §8). */
export const TRACE_TASK_TYPE = 'trace';

/** Largest accepted `nTracesReliable`. */
const TRAINING_LIST = {
  orderable: ['appName'],
  fields: ['appName', 'nTracesReliable', 'auto', 'traces', 'tracesSinceLastImage', 'lastProcessed', 'quality'],
  defaultOrder: [{ field: 'appName', desc: false }],
} as const;


/**
 * /be/v1/trainings (`trainings` read | update, api.md §10). A training exists for every app (the
 * defaults until it is patched or processed).
 */
export class TrainingService {
  constructor(private readonly deps: ServiceDeps, private readonly opts: { queue: TaskQueue }) {}

  async list(auth: Principal, f: { appName?: string }, raw: RawListQuery): Promise<Page<Partial<TrainingDto>>> {
    const user = requirePermission(auth, 'trainings', 'read');
    const q = parseListQuery(raw, TRAINING_LIST);
    const { total, rows } = await listTrainingsOfOrg(this.deps.db, user.orgId, { appName: f.appName }, {
      offset: q.offset, limit: q.limit, order: q.order.map((o) => ({ column: 'name', desc: o.desc })),
    });
    const items: Array<Partial<TrainingDto>> = [];
    for (const r of rows) items.push(project(this.dtoOf(r.app, r.training, r.traces), q.fields));
    return { total, offset: q.offset, limit: q.limit, items };
  }

  async get(auth: Principal, appName: string): Promise<TrainingDto> {
    const user = requirePermission(auth, 'trainings', 'read');
    const app = await findApp(this.deps.db, user.orgId, appName);
    if (!app) throw notFound('app', appName);
    return this.toDto(this.deps.db, app, (await findTraining(this.deps.db, app.id)) ?? null);
  }

  /**
   * PATCH /be/v1/trainings. Errors: missing-param appName; invalid-param (range); not-found. When
   * the change makes auto processing due (auto switched on, or the threshold lowered to what has
   * already arrived), processing starts at once.
   */
  async patch(auth: Principal, input: { appName?: string; nTracesReliable?: number; auto?: boolean }): Promise<TrainingDto> {
    const user = requirePermission(auth, 'trainings', 'update');
    if (input.appName === undefined) throw missingParam('appName');
    const n = input.nTracesReliable;
    if (n !== undefined && (!Number.isSafeInteger(n) || n < 1 || n > MAX_N_TRACES_RELIABLE)) {
      throw invalidParam('nTracesReliable', `must be an integer in 1..${MAX_N_TRACES_RELIABLE}`);
    }
    const { db, clock } = this.deps;
    let started = false;
    const out = await db.transaction().execute(async (trx) => {
      const app = await findApp(trx, user.orgId, input.appName!);
      if (!app) throw notFound('app', input.appName!);
      const now = clock.now();
      await lockTraining(trx, user.orgId, app.id, now);
      await updateTraining(trx, app.id, {
        ...(n !== undefined ? { n_traces_reliable: n } : {}),
        ...(input.auto !== undefined ? { auto: input.auto ? 1 : 0 } : {}),
        updated_ms: now,
      });
      started = (await startAutoTraining(this.opts.queue, trx, { orgId: user.orgId, appId: app.id, nowMs: now })) !== undefined;
      return this.toDto(trx, app, (await findTraining(trx, app.id)) ?? null);
    });
    // After the commit (the worker must find the task): only when trace processing was submitted.
    if (started) this.opts.queue.wake();
    return out;
  }

  /**
   * POST /be/v1/trigger `{type:"traces", appName}` (the caller checked tasks.execute): submits a
   * `trace` task now, whatever the count. Errors: not-found; 409 invalid-state when the app has no
   * published build, no traces, or trace processing already submitted or running (one at a time
   * per app; `task` names it); 409 app-locked while the app is in error state.
   */
  async trigger(orgId: string, appName: string): Promise<TaskRow> {
    const { clock } = this.deps;
    const task = await this.opts.queue.transaction(async (trx) => {
      const app = await findApp(trx, orgId, appName);
      if (!app) throw notFound('app', appName);
      const now = clock.now();
      await lockTraining(trx, orgId, app.id, now);
      const active = await activeTraceTask(trx, orgId, app.name);
      if (active) throw new AppError('invalid-state', `trace processing of ${app.name} is already ${active.status} (${active.name})`, { task: active.name });
      if (app.locked === 1 || app.error !== null) throw new AppError('app-locked', `app ${app.name} is in error state: fix it (retry its failed deploy) first`);
      if (app.i_cur_build === null) throw new AppError('invalid-state', `app ${app.name} has no published build to train`);
      if ((await countTraces(trx, app.id)) === 0) throw new AppError('invalid-state', `app ${app.name} has no traces to train on`);
      return submitTraceTask(this.opts.queue, trx, { orgId, app, reason: 'trigger', nowMs: now });
    });
    return task;
  }

  private async toDto(db: Executor, app: AppRow, t: TrainingRow | null): Promise<TrainingDto> {
    return this.dtoOf(app, t, await countTraces(db, app.id));
  }

  private dtoOf(app: AppRow, t: TrainingRow | null, traces: number): TrainingDto {
    const q = parseQuality(t?.quality ?? null);
    return {
      appName: app.name,
      nTracesReliable: t?.n_traces_reliable ?? DEFAULT_N_TRACES_RELIABLE,
      auto: (t?.auto ?? 1) === 1,
      traces,
      tracesSinceLastImage: Math.max(0, traces - (t?.traces_at_last_run ?? 0)),
      lastProcessed: t?.last_processed_ms == null ? null : toUnixSeconds(t.last_processed_ms),
      quality: q ? { coverage: q.coverage, preloadBytes: q.preloadBytes } : null,
    };
  }
}

/** The app's trace task that is submitted or running, if any. */
export const activeTraceTask = (db: Executor, orgId: string, appName: string): Promise<TaskRow | undefined> =>
  activeTaskOfApp(db, orgId, appName, TRACE_TASK_TYPE);

/** Enqueues a trace task for the app (in the caller's transaction) and announces `trace.submit`. */
async function submitTraceTask(
  queue: TaskQueue,
  trx: Executor,
  o: { orgId: string; app: AppRow; reason: TraceTaskPayload['reason']; nowMs: number },
): Promise<TaskRow> {
  const payload: TraceTaskPayload = { appId: o.app.id, reason: o.reason };
  const task = await queue.enqueue(trx, {
    type: TRACE_TASK_TYPE, payload, orgId: o.orgId, appName: o.app.name,
    buildId: o.app.i_cur_build === null ? null : Number(o.app.i_cur_build),
    // With the app's mkraw and deploy steps: never at the same time as an import of the app.
    queueKey: appQueueKey(o.app.id),
  });
  const orgName = await orgNameOf(trx, o.orgId);
  if (orgName !== undefined) {
    await emitEvent(trx, { type: 'trace', event: 'submit', orgName, appName: o.app.name, taskName: task.name, ...(o.app.dxf_name ? { dxfName: o.app.dxf_name } : {}) }, o.nowMs);
  }
  return task;
}

/**
 * Automatic processing (api.md §10): when the app's training is `auto` and `nTracesReliable` traces
 * arrived since processing last ran, submits a trace task — unless one is already submitted or
 * running, the app has no published build, or it is in error state (then a later trace retries).
 * Call inside the transaction that stored a trace (or changed the training). Returns the task.
 */
export async function startAutoTraining(
  queue: TaskQueue,
  trx: Executor,
  o: { orgId: string; appId: string; nowMs: number },
): Promise<TaskRow | undefined> {
  const t = await lockTraining(trx, o.orgId, o.appId, o.nowMs);
  if (t.auto !== 1) return undefined;
  const traces = await countTraces(trx, o.appId);
  if (traces - t.traces_at_last_run < t.n_traces_reliable) return undefined;
  const app = await findAppById(trx, o.appId);
  if (!app || app.i_cur_build === null || app.locked === 1 || app.error !== null) return undefined;
  if (await activeTraceTask(trx, o.orgId, app.name)) return undefined;
  return submitTraceTask(queue, trx, { orgId: o.orgId, app, reason: 'auto', nowMs: o.nowMs });
}

