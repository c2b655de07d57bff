import { sql } from 'kysely';
import type { DownloadKeyRow, NewDownloadKey } from '../faststart-tables.js';
import { applyWindow, type Executor, type ListWindow } from './common.js';

/** Download keys of apps (api.md §2.3 resource `keys`). */

export async function insertDownloadKey(db: Executor, row: NewDownloadKey): Promise<void> {
  await db.insertInto('download_keys').values(row).execute();
}

/** Keys of the org, of one app when `appId` is given; oldest first. */
export async function listDownloadKeys(db: Executor, orgId: string, appId?: string): Promise<DownloadKeyRow[]> {
  let q = db.selectFrom('download_keys').selectAll().where('org_id', '=', orgId);
  if (appId !== undefined) q = q.where('app_id', '=', appId);
  return q.orderBy('created_ms').orderBy('id').execute();
}

/** One page of the org's keys (of one app when `appId` is given), each with its app's name, and the total. */
export async function pageDownloadKeys(
  db: Executor, orgId: string, appId: string | undefined, w: ListWindow,
): Promise<{ total: number; rows: Array<DownloadKeyRow & { app_name: string }> }> {
  let base = db.selectFrom('download_keys').innerJoin('apps', 'apps.id', 'download_keys.app_id').where('download_keys.org_id', '=', orgId);
  if (appId !== undefined) base = base.where('download_keys.app_id', '=', appId);
  const { total } = await base.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
  const rows = await applyWindow(base.selectAll('download_keys').select('apps.name as app_name'), w, 'download_keys.id').execute();
  return { total: Number(total), rows };
}

export const findDownloadKey = (db: Executor, orgId: string, id: string): Promise<DownloadKeyRow | undefined> =>
  db.selectFrom('download_keys').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();

export const findDownloadKeyByHash = (db: Executor, keyHash: string): Promise<DownloadKeyRow | undefined> =>
  db.selectFrom('download_keys').selectAll().where('key_hash', '=', keyHash).executeTakeFirst();

export async function countDownloadKeysOfApp(db: Executor, appId: string): Promise<number> {
  const { c } = await db.selectFrom('download_keys').where('app_id', '=', appId).select((eb) => eb.fn.countAll<number>().as('c')).executeTakeFirstOrThrow();
  return Number(c);
}

export async function deleteDownloadKey(db: Executor, orgId: string, id: string): Promise<boolean> {
  const r = await db.deleteFrom('download_keys').where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export async function touchDownloadKey(db: Executor, id: string, nowMs: number): Promise<void> {
  await db.updateTable('download_keys').set({ last_used_ms: nowMs }).where('id', '=', id).execute();
}

/** Whether an app whose org and app names equal these ignoring ASCII case has a download key. */
export async function hasDownloadKeysIgnoringCase(db: Executor, orgName: string, appName: string): Promise<boolean> {
  const row = await db
    .selectFrom('download_keys')
    .innerJoin('apps', 'apps.id', 'download_keys.app_id')
    .innerJoin('orgs', 'orgs.id', 'apps.org_id')
    .select('download_keys.id')
    .where(sql<boolean>`lower(orgs.name) = ${orgName.toLowerCase()}`)
    .where(sql<boolean>`lower(apps.name) = ${appName.toLowerCase()}`)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}
