import type { OrgRow } from '../database.js';
import { applyWindow, type Executor, type ListWindow } from './common.js';

export const findOrgByName = (db: Executor, name: string): Promise<OrgRow | undefined> =>
  db.selectFrom('orgs').selectAll().where('name', '=', name).executeTakeFirst();

export const findOrgById = (db: Executor, id: string): Promise<OrgRow | undefined> =>
  db.selectFrom('orgs').selectAll().where('id', '=', id).executeTakeFirst();

export async function insertOrg(db: Executor, row: OrgRow): Promise<void> {
  await db.insertInto('orgs').values(row).execute();
}

export async function listOrgs(db: Executor, w: ListWindow): Promise<{ total: number; rows: OrgRow[] }> {
  const { total } = await db
    .selectFrom('orgs')
    .select((eb) => eb.fn.countAll<number>().as('total'))
    .executeTakeFirstOrThrow();
  const rows = await applyWindow(db.selectFrom('orgs').selectAll(), w, 'name').execute();
  return { total: Number(total), rows };
}

/** Deletes the org; every row that belongs to it goes with it (foreign keys cascade). */
export async function deleteOrg(db: Executor, id: string): Promise<void> {
  await db.deleteFrom('orgs').where('id', '=', id).execute();
}

export async function orgNameOf(db: Executor, orgId: string): Promise<string | undefined> {
  const r = await db.selectFrom('orgs').select('name').where('id', '=', orgId).executeTakeFirst();
  return r?.name;
}
