import type { NewTrace, TraceRow } from '../faststart-tables.js';
import { addTracesBytes } from './app.repository.js';
import { applyWindow, type Executor, type ListWindow } from './common.js';

/** Play traces (issue 14): rows of `traces`; the bodies are blobs the callers store and delete. */

export async function insertTrace(db: Executor, row: NewTrace): Promise<void> {
  await db.insertInto('traces').values(row).execute();
}

/** Traces of the app (created at or after `sinceMs` when given). */
export async function countTraces(db: Executor, appId: string, sinceMs?: number): Promise<number> {
  let q = db.selectFrom('traces').where('app_id', '=', appId);
  if (sinceMs !== undefined) q = q.where('created_ms', '>=', sinceMs);
  const { c } = await q.select((eb) => eb.fn.countAll<number>().as('c')).executeTakeFirstOrThrow();
  return Number(c);
}

export interface TraceListOptions {
  /** Only traces created at or after this time. */
  sinceMs?: number;
  /** At most this many, newest first (default: all). */
  limit?: number;
}

/** Traces of an app of the org, newest first (ties by id, descending). */
export async function listTraces(db: Executor, orgId: string, appId: string, o: TraceListOptions = {}): Promise<TraceRow[]> {
  let q = db.selectFrom('traces').selectAll().where('org_id', '=', orgId).where('app_id', '=', appId);
  if (o.sinceMs !== undefined) q = q.where('created_ms', '>=', o.sinceMs);
  q = q.orderBy('created_ms', 'desc').orderBy('id', 'desc');
  if (o.limit !== undefined) q = q.limit(o.limit);
  const rows = await q.execute();
  return rows.map(normalizeTrace);
}

export async function findTrace(db: Executor, orgId: string, id: string): Promise<TraceRow | undefined> {
  const row = await db.selectFrom('traces').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  return row ? normalizeTrace(row) : undefined;
}

/** Total stored bytes of the app's traces. */
export async function traceBytesOfApp(db: Executor, appId: string): Promise<number> {
  const { s } = await db
    .selectFrom('traces')
    .where('app_id', '=', appId)
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('size_bytes'), eb.lit(0)).as('s'))
    .executeTakeFirstOrThrow();
  return Number(s);
}

/** Deletes the app's trace rows; returns their blob keys so the caller deletes the blobs. */
export async function deleteTracesOfApp(db: Executor, appId: string): Promise<string[]> {
  const rows = await db.selectFrom('traces').select('blob_key').where('app_id', '=', appId).execute();
  await db.deleteFrom('traces').where('app_id', '=', appId).execute();
  return rows.map((r) => r.blob_key);
}

/** Blob keys of every trace of the org (before the org is deleted: the rows go by cascade). */
export async function traceBlobKeysOfOrg(db: Executor, orgId: string): Promise<string[]> {
  const rows = await db.selectFrom('traces').select(['blob_key']).where('org_id', '=', orgId).execute();
  return rows.map((r) => r.blob_key);
}

/** PostgreSQL returns `real` as a number and bigint as number (dialect parsers); keep the shape exact. */
const normalizeTrace = (r: TraceRow): TraceRow => ({
  ...r,
  build_id: r.build_id === null ? null : Number(r.build_id),
  first_session: Number(r.first_session),
  records: Number(r.records),
  bytes_read: Number(r.bytes_read),
  duration_ms: Number(r.duration_ms),
  coverage: Number(r.coverage),
  size_bytes: Number(r.size_bytes),
  created_ms: Number(r.created_ms),
});

/** One page of the app's traces (api.md §1.3 window) and the total. */
export async function pageTraces(db: Executor, orgId: string, appId: string, w: ListWindow): Promise<{ total: number; rows: TraceRow[] }> {
  const base = db.selectFrom('traces').where('org_id', '=', orgId).where('app_id', '=', appId);
  const { total } = await base.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
  const rows = await applyWindow(base.selectAll(), w, 'id').execute();
  return { total: Number(total), rows: rows.map(normalizeTrace) };
}

/** Records a stored trace: the row, and its bytes in the app's consumption (apps.traces_bytes). */
export async function recordTrace(db: Executor, row: NewTrace): Promise<void> {
  await insertTrace(db, row);
  await addTracesBytes(db, row.app_id, row.size_bytes);
}
