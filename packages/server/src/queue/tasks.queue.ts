import { sql, type Kysely } from 'kysely';
import type { DbCapabilities } from '../db/capabilities.js';
import type { Database, TaskRow } from '../db/database.js';
import { sortableId } from '../domain/ids.js';
import { storedBackoff } from './retry-policy.js';
import type { BackoffPolicy } from '@rockit/engine';

/**
 * ALL task-queue SQL lives here. Invariants:
 * - a task is claimed by one atomic statement (no check-then-act); PostgreSQL uses
 *   `FOR UPDATE SKIP LOCKED` so many workers in many processes claim in parallel, SQLite relies
 *   on its single writer;
 * - a running task carries a lease (`lease_owner`, `lease_expires_ms`); only the owner can
 *   heartbeat, complete or fail it, so a worker whose lease lapsed cannot overwrite the result of
 *   the worker that took over;
 * - tasks with the same `queue_key` run one at a time, in name (= submission) order;
 * - a failed attempt is retried after capped exponential backoff with jitter (the task type's
 *   retry policy, queue/retry-policy.ts) until `max_attempts`, then the task is `failed`.
 */

type Db = Kysely<Database>;

export interface EnqueueInput {
  /** The task's name when chosen beforehand (newTaskName), e.g. to link it before it is inserted; default a new one. */
  name?: string;
  type: string;
  payload: unknown;
  orgId?: string | null;
  appName?: string | null;
  buildId?: number | null;
  queueKey?: string | null;
  maxAttempts: number;
  /** The backoff between attempts, kept with the task (retry_policy); absent = its type's policy when an attempt fails. */
  retryPolicy?: BackoffPolicy;
  /** Earliest start, ms; default now. */
  runAfterMs?: number;
}

/** A new task name (`t_` + a sortable id: names order by submission). */
export const newTaskName = (nowMs: number): string => 't_' + sortableId(nowMs);

/** Inserts a submitted task (inside the caller's transaction when given one) and returns its row. */
export async function enqueueTask(db: Db, nowMs: number, input: EnqueueInput): Promise<TaskRow> {
  const row: TaskRow = {
    name: input.name ?? newTaskName(nowMs),
    type: input.type,
    status: 'submitted',
    org_id: input.orgId ?? null,
    app_name: input.appName ?? null,
    build_id: input.buildId ?? null,
    queue_key: input.queueKey ?? null,
    payload: JSON.stringify(input.payload ?? {}),
    result: null,
    error: null,
    warnings: '[]',
    progress: 0,
    attempts: 0,
    max_attempts: input.maxAttempts,
    retry_policy: input.retryPolicy ? storedBackoff(input.retryPolicy) : null,
    run_after_ms: input.runAfterMs ?? nowMs,
    lease_owner: null,
    lease_expires_ms: null,
    created_ms: nowMs,
    started_ms: null,
    ended_ms: null,
    updated_ms: nowMs,
  };
  await db.insertInto('tasks').values(row).execute();
  return row;
}

/**
 * Claims the oldest runnable task of one of `types`: sets it running, leased to `owner` until
 * now + leaseMs, attempts + 1. Returns undefined when nothing is runnable.
 */
export async function claimTask(
  db: Db,
  caps: DbCapabilities,
  owner: string,
  types: readonly string[],
  nowMs: number,
  leaseMs: number,
): Promise<TaskRow | undefined> {
  if (types.length === 0) return undefined;
  const lock = caps.skipLocked ? sql`for update skip locked` : sql``;
  const typeList = sql.join(types.map((t) => sql`${t}`));
  const result = await sql<TaskRow>`
    update tasks set
      status = 'running',
      lease_owner = ${owner},
      lease_expires_ms = ${nowMs + leaseMs},
      attempts = attempts + 1,
      started_ms = coalesce(started_ms, ${nowMs}),
      updated_ms = ${nowMs}
    where name = (
      select t.name from tasks t
      where t.status = 'submitted' and t.run_after_ms <= ${nowMs} and t.type in (${typeList})
        and (t.queue_key is null or not exists (
          select 1 from tasks o where o.queue_key = t.queue_key and o.name <> t.name
            and (o.status = 'running' or (o.status = 'submitted' and o.name < t.name))))
      order by t.run_after_ms, t.name
      limit 1
      ${lock}
    ) and status = 'submitted'
    returning *`.execute(db);
  return result.rows[0];
}

/** Extends the lease; false when the task is no longer leased to `owner` (it was taken over or ended). */
export async function heartbeatTask(db: Db, name: string, owner: string, nowMs: number, leaseMs: number, progress?: number): Promise<boolean> {
  const r = await db
    .updateTable('tasks')
    .set({ lease_expires_ms: nowMs + leaseMs, updated_ms: nowMs, ...(progress !== undefined ? { progress } : {}) })
    .where('name', '=', name)
    .where('lease_owner', '=', owner)
    .where('status', '=', 'running')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Marks the task succeeded with its result; false when `owner` no longer holds it. */
export async function completeTask(db: Db, name: string, owner: string, nowMs: number, result: unknown): Promise<boolean> {
  const r = await db
    .updateTable('tasks')
    .set({
      status: 'succeeded', result: JSON.stringify(result ?? {}), error: null, progress: 1,
      lease_owner: null, lease_expires_ms: null, ended_ms: nowMs, updated_ms: nowMs,
    })
    .where('name', '=', name)
    .where('lease_owner', '=', owner)
    .where('status', '=', 'running')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/**
 * Records a failed attempt: back to `submitted`, runnable after `retryAfterMs` (the caller's backoff,
 * queue/retry-policy.ts), while attempts remain (or when `retryable` is false: straight to
 * `failed`). Returns the new status, or undefined when `owner` no longer holds the task.
 */
export async function failTask(
  db: Db,
  task: Pick<TaskRow, 'name' | 'attempts' | 'max_attempts'>,
  owner: string,
  nowMs: number,
  error: Record<string, unknown>,
  retryAfterMs: number,
  retryable = true,
): Promise<'submitted' | 'failed' | undefined> {
  const final = !retryable || task.attempts >= task.max_attempts;
  const r = await db
    .updateTable('tasks')
    .set({
      status: final ? 'failed' : 'submitted',
      error: JSON.stringify(error),
      lease_owner: null,
      lease_expires_ms: null,
      run_after_ms: final ? nowMs : nowMs + retryAfterMs,
      ended_ms: final ? nowMs : null,
      updated_ms: nowMs,
    })
    .where('name', '=', task.name)
    .where('lease_owner', '=', owner)
    .where('status', '=', 'running')
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) return undefined;
  return final ? 'failed' : 'submitted';
}

/**
 * Running tasks whose lease lapsed (their worker died or hung): back to `submitted` when attempts
 * remain, else `failed`. Returns how many were reclaimed. Safe to run from every worker.
 */
export async function reclaimExpiredLeases(db: Db, nowMs: number): Promise<number> {
  const lapsed = { message: 'the worker lost its lease (crashed or stalled)' };
  const failed = await db
    .updateTable('tasks')
    .set({ status: 'failed', error: JSON.stringify(lapsed), lease_owner: null, lease_expires_ms: null, ended_ms: nowMs, updated_ms: nowMs })
    .where('status', '=', 'running')
    .where('lease_expires_ms', '<', nowMs)
    .whereRef('attempts', '>=', 'max_attempts')
    .executeTakeFirst();
  const retried = await db
    .updateTable('tasks')
    .set({ status: 'submitted', error: JSON.stringify(lapsed), lease_owner: null, lease_expires_ms: null, run_after_ms: nowMs, updated_ms: nowMs })
    .where('status', '=', 'running')
    .where('lease_expires_ms', '<', nowMs)
    .executeTakeFirst();
  return Number(failed.numUpdatedRows) + Number(retried.numUpdatedRows);
}

export const findTask = (db: Db, name: string): Promise<TaskRow | undefined> =>
  db.selectFrom('tasks').selectAll().where('name', '=', name).executeTakeFirst();

/**
 * Ends a running attempt with a final status other than succeeded/failed (e.g. `expired`: an upload
 * that never came). False when `owner` no longer holds the task.
 */
export async function endTask(
  db: Db,
  name: string,
  owner: string,
  nowMs: number,
  status: 'expired' | 'canceled',
  error: Record<string, unknown>,
): Promise<boolean> {
  const r = await db
    .updateTable('tasks')
    .set({ status, error: JSON.stringify(error), lease_owner: null, lease_expires_ms: null, ended_ms: nowMs, updated_ms: nowMs })
    .where('name', '=', name)
    .where('lease_owner', '=', owner)
    .where('status', '=', 'running')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** A submitted (not running) task becomes `expired`; false when it is not submitted any more. */
export async function expireSubmittedTask(db: Db, name: string, nowMs: number, error: Record<string, unknown>): Promise<boolean> {
  const r = await db
    .updateTable('tasks')
    .set({ status: 'expired', error: JSON.stringify(error), ended_ms: nowMs, updated_ms: nowMs })
    .where('name', '=', name)
    .where('status', '=', 'submitted')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Progress of a task that has not started (an upload task while its PUT arrives); ignored once it runs. */
export async function setSubmittedProgress(db: Db, name: string, progress: number, nowMs: number): Promise<void> {
  await db
    .updateTable('tasks')
    .set({ progress: Math.min(1, Math.max(0, progress)), updated_ms: nowMs })
    .where('name', '=', name)
    .where('status', '=', 'submitted')
    .execute();
}

/** A submitted task may run now (e.g. its upload arrived); false when it is not submitted. */
export async function releaseSubmittedTask(db: Db, name: string, nowMs: number): Promise<boolean> {
  const r = await db
    .updateTable('tasks')
    .set({ run_after_ms: nowMs, updated_ms: nowMs })
    .where('name', '=', name)
    .where('status', '=', 'submitted')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/**
 * A failed task is submitted again with fresh attempts (POST /be/v1/trigger retry). False when it
 * is not `failed` (compare-and-set: two retries at once re-run it once).
 */
export async function retryFailedTask(db: Db, name: string, nowMs: number): Promise<boolean> {
  const r = await db
    .updateTable('tasks')
    .set({ status: 'submitted', error: null, attempts: 0, progress: 0, run_after_ms: nowMs, started_ms: null, ended_ms: null, updated_ms: nowMs })
    .where('name', '=', name)
    .where('status', '=', 'failed')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Marks every warning of the task acknowledged (they stay on the task). */
export async function acknowledgeTaskWarnings(db: Db, task: Pick<TaskRow, 'name' | 'warnings'>, nowMs: number): Promise<void> {
  const warnings = (JSON.parse(task.warnings) as Array<Record<string, unknown>>).map((w) => ({ ...w, acknowledged: true }));
  await db.updateTable('tasks').set({ warnings: JSON.stringify(warnings), updated_ms: nowMs }).where('name', '=', task.name).execute();
}
