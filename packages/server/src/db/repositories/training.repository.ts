import type { AppRow } from '../app-tables.js';
import type { TrainingRow, TrainingUpdate } from '../training-tables.js';
import { applyWindow, contains, type Executor, type ListWindow } from './common.js';

/** Trainings (api.md §10): one row per app, made with the defaults the first time it is needed. */

/** Predicted preload of an image at the three reference bandwidths (bytes). */
export interface PreloadBytes {
  '25Mbit': number;
  '100Mbit': number;
  '1Gbit': number;
}

/**
 * What the last trace processing found (stored as JSON in `trainings.quality`). `coverage` and
 * `preloadBytes` are the published image's (the API shows them); the rest is bookkeeping.
 */
export interface TrainingQuality {
  /** Mean fraction of the traces' read bytes that fall on the build (0..1). */
  coverage: number;
  /** Predicted preload of the image that is published after the processing. */
  preloadBytes: PreloadBytes;
  /** The same prediction for the image the processing started from. */
  previousPreloadBytes?: PreloadBytes;
  /** The trace task that wrote this (a task taken over after its worker died finds its own result). */
  task: string;
  buildId: number;
  /** Traces used (mapped onto the build). */
  traces: number;
  /** Whether a new image was made (the prediction improved). */
  improved: boolean;
  /** The image variant the processing left current (new one when improved). */
  dxfName: string;
  /** The no-stall preload of every training session with the previous and the trained order (the decision's measure). */
  envelope?: { before: PreloadBytes; after: PreloadBytes };
  /** The deploy task that publishes the new image, when improved. */
  deployTask?: string;
}

export const DEFAULT_N_TRACES_RELIABLE = 12;

export async function findTraining(db: Executor, appId: string): Promise<TrainingRow | undefined> {
  const row = await db.selectFrom('trainings').selectAll().where('app_id', '=', appId).executeTakeFirst();
  return row ? normalize(row) : undefined;
}

/** The app's training row, inserted with the defaults when absent. */
export async function ensureTraining(db: Executor, orgId: string, appId: string, nowMs: number): Promise<TrainingRow> {
  await db
    .insertInto('trainings')
    .values({
      app_id: appId, org_id: orgId, n_traces_reliable: DEFAULT_N_TRACES_RELIABLE, auto: 1, traces_at_last_run: 0,
      last_processed_ms: null, next_training: 1, quality: null, created_ms: nowMs, updated_ms: nowMs,
    })
    .onConflict((oc) => oc.column('app_id').doNothing())
    .execute();
  const row = await findTraining(db, appId);
  if (!row) throw new Error(`training of app ${appId} vanished`);
  return row;
}

/**
 * Like ensureTraining, but also touches the row so that, inside a transaction, concurrent callers
 * for the same app are serialised on it (PostgreSQL row lock; SQLite has one writer anyway).
 */
export async function lockTraining(db: Executor, orgId: string, appId: string, nowMs: number): Promise<TrainingRow> {
  await ensureTraining(db, orgId, appId, nowMs);
  await db.updateTable('trainings').set({ updated_ms: nowMs }).where('app_id', '=', appId).execute();
  return (await findTraining(db, appId))!;
}

export async function updateTraining(db: Executor, appId: string, changes: TrainingUpdate): Promise<void> {
  await db.updateTable('trainings').set(changes).where('app_id', '=', appId).execute();
}

export interface TrainingListFilter {
  /** Partial, case-insensitive match on the app name. */
  appName?: string;
}

/** Apps of the org with their training rows (null: never touched, the defaults apply), windowed. */
export async function listTrainingsOfOrg(
  db: Executor,
  orgId: string,
  f: TrainingListFilter,
  w: ListWindow,
): Promise<{ total: number; rows: Array<{ app: AppRow; training: TrainingRow | null; traces: number }> }> {
  let base = db.selectFrom('apps').where('org_id', '=', orgId);
  if (f.appName) base = base.where(contains('name', f.appName));
  const { total } = await base.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
  const apps = await applyWindow(base.selectAll(), w, 'name').execute();
  const rows = apps.length === 0 ? [] : await db.selectFrom('trainings').selectAll().where('app_id', 'in', apps.map((a) => a.id)).execute();
  const byApp = new Map(rows.map((r) => [r.app_id, normalize(r)]));
  const counts = apps.length === 0 ? [] : await db
    .selectFrom('traces')
    .select(['app_id', (eb) => eb.fn.countAll<number>().as('c')])
    .where('app_id', 'in', apps.map((a) => a.id))
    .groupBy('app_id')
    .execute();
  const traces = new Map(counts.map((c) => [c.app_id, Number(c.c)]));
  return { total: Number(total), rows: apps.map((app) => ({ app, training: byApp.get(app.id) ?? null, traces: traces.get(app.id) ?? 0 })) };
}

/** Parses `trainings.quality`; null when absent or unreadable. */
export function parseQuality(text: string | null): TrainingQuality | null {
  if (text === null) return null;
  try {
    const q = JSON.parse(text) as TrainingQuality;
    return q && typeof q === 'object' && typeof q.coverage === 'number' && q.preloadBytes && typeof q.preloadBytes === 'object' ? q : null;
  } catch {
    return null;
  }
}

/** PostgreSQL returns bigint columns as strings unless parsed; keep the shape exact. */
const normalize = (r: TrainingRow): TrainingRow => ({
  ...r,
  n_traces_reliable: Number(r.n_traces_reliable),
  auto: Number(r.auto),
  traces_at_last_run: Number(r.traces_at_last_run),
  last_processed_ms: r.last_processed_ms === null ? null : Number(r.last_processed_ms),
  next_training: Number(r.next_training),
  created_ms: Number(r.created_ms),
  updated_ms: Number(r.updated_ms),
});
