import type { TaskRow, TaskStatus } from '../database.js';
import { applyWindow, contains, type Executor, type ListWindow } from './common.js';

export interface TaskFilter {
  appName?: string;
  type?: string;
  status?: TaskStatus;
  /** Created at or after, ms. */
  sinceMs?: number;
  /** Created before, ms. */
  untilMs?: number;
}

export async function listOrgTasks(db: Executor, orgId: string, f: TaskFilter, w: ListWindow): Promise<{ total: number; rows: TaskRow[] }> {
  let base = db.selectFrom('tasks').where('org_id', '=', orgId);
  if (f.appName) base = base.where(contains('app_name', f.appName));
  if (f.type) base = base.where('type', '=', f.type);
  if (f.status) base = base.where('status', '=', f.status);
  if (f.sinceMs !== undefined) base = base.where('created_ms', '>=', f.sinceMs);
  if (f.untilMs !== undefined) base = base.where('created_ms', '<', f.untilMs);
  const { total } = await base.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
  const rows = await applyWindow(base.selectAll(), w, 'name').execute();
  return { total: Number(total), rows };
}

export const findOrgTask = (db: Executor, orgId: string, name: string): Promise<TaskRow | undefined> =>
  db.selectFrom('tasks').selectAll().where('org_id', '=', orgId).where('name', '=', name).executeTakeFirst();
/** Tasks of this import carry its build id (api.md §8 `buildId`). */
export async function setTasksBuildId(db: Executor, names: string[], buildId: number): Promise<void> {
  if (names.length === 0) return;
  await db.updateTable('tasks').set({ build_id: buildId }).where('name', 'in', names).execute();
}

/** Stores a task's warnings (api.md §8), unacknowledged. */
export async function setTaskWarnings(db: Executor, taskName: string, warnings: Array<{ code: string; message: string }>): Promise<void> {
  const stored = warnings.map((w) => ({ code: w.code, message: w.message, acknowledged: false }));
  await db.updateTable('tasks').set({ warnings: JSON.stringify(stored) }).where('name', '=', taskName).execute();
}

/** The app's task of this type that is submitted or running, if any. */
export const activeTaskOfApp = (db: Executor, orgId: string, appName: string, type: string): Promise<TaskRow | undefined> =>
  db
    .selectFrom('tasks')
    .selectAll()
    .where('type', '=', type)
    .where('org_id', '=', orgId)
    .where('app_name', '=', appName)
    .where('status', 'in', ['submitted', 'running'])
    .executeTakeFirst();
