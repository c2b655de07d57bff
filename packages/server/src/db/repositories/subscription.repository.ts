import { sql } from 'kysely';
import type { DeliveryRow, SubscriptionRow } from '../subscription-tables.js';
import { applyWindow, contains, type Executor, type ListWindow } from './common.js';

/**
 * Subscriptions (api.md §11) and their delivery log. Lookups by name take the org id; the
 * delivery handler finds a subscription by id (the id is what its task carries).
 */


export const findSubscription = (db: Executor, orgId: string, name: string): Promise<SubscriptionRow | undefined> =>
  db.selectFrom('subscriptions').selectAll().where('org_id', '=', orgId).where('name', '=', name).executeTakeFirst();

export const findSubscriptionById = (db: Executor, id: string): Promise<SubscriptionRow | undefined> =>
  db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirst();

/** Every subscription of the org with this name (with the org's id), oldest first. */
export async function subscriptionsOfOrgName(db: Executor, orgName: string): Promise<SubscriptionRow[]> {
  return db
    .selectFrom('subscriptions')
    .innerJoin('orgs', 'orgs.id', 'subscriptions.org_id')
    .selectAll('subscriptions')
    .where('orgs.name', '=', orgName)
    .orderBy('subscriptions.created_ms')
    .orderBy('subscriptions.id')
    .execute();
}

export interface SubscriptionFilter {
  /** Partial, case-insensitive match on the name. */
  name?: string;
  type?: string;
}

export async function listSubscriptions(
  db: Executor,
  orgId: string,
  f: SubscriptionFilter,
  w: ListWindow,
): Promise<{ total: number; rows: SubscriptionRow[] }> {
  let base = db.selectFrom('subscriptions').where('org_id', '=', orgId);
  if (f.name) base = base.where(contains('name', f.name));
  if (f.type) base = base.where('type', '=', f.type as SubscriptionRow['type']);
  const { total } = await base.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
  const rows = await applyWindow(base.selectAll(), w, 'name').execute();
  return { total: Number(total), rows };
}

export async function insertSubscription(db: Executor, row: SubscriptionRow): Promise<void> {
  await db.insertInto('subscriptions').values(row).execute();
}

/** Its delivery log goes with it (cascade); tasks still queued for it find it gone and do nothing. */
export async function deleteSubscription(db: Executor, id: string): Promise<void> {
  await db.deleteFrom('subscriptions').where('id', '=', id).execute();
}

export async function insertDelivery(db: Executor, row: DeliveryRow): Promise<void> {
  await db.insertInto('subscription_deliveries').values(row).execute();
}

/** The newest `limit` attempts of a subscription, newest first. */
export const recentDeliveries = (db: Executor, subscriptionId: string, limit: number): Promise<DeliveryRow[]> =>
  db
    .selectFrom('subscription_deliveries')
    .selectAll()
    .where('subscription_id', '=', subscriptionId)
    .orderBy('created_ms', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();

/** Keeps only the newest `keep` attempts of a subscription, so the log stays bounded. */
export async function pruneDeliveries(db: Executor, subscriptionId: string, keep: number): Promise<void> {
  await sql`
    delete from subscription_deliveries
    where subscription_id = ${subscriptionId}
      and id not in (
        select id from subscription_deliveries
        where subscription_id = ${subscriptionId}
        order by created_ms desc, id desc
        limit ${keep})`.execute(db);
}
