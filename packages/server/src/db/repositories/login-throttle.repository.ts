import { sql } from 'kysely';
import type { Executor } from './common.js';

export type { LoginFailuresTable } from '../database.js';

/** A key's live window: how many attempts were counted in it and when it ends. */
export interface ThrottleWindow {
  failures: number;
  windowEndsMs: number;
}

/** The live windows (not ended at `nowMs`) of the given keys. */
export async function liveFailures(db: Executor, keys: string[], nowMs: number): Promise<Array<{ key: string } & ThrottleWindow>> {
  if (keys.length === 0) return [];
  const rows = await db
    .selectFrom('login_failures')
    .selectAll()
    .where('key', 'in', keys)
    .where('window_ends_ms', '>', nowMs)
    .execute();
  return rows.map((r) => ({ key: r.key, failures: Number(r.failures), windowEndsMs: Number(r.window_ends_ms) }));
}

/**
 * Counts one attempt for `key` in one statement and returns the window as it is after counting:
 * concurrent counts (threads, API nodes) each see their own number, so exactly `max` of them see
 * a number <= max. A window that has ended starts again at 1 and ends `windowMs` from now.
 */
export async function countFailure(db: Executor, key: string, nowMs: number, windowMs: number): Promise<ThrottleWindow> {
  const ended = sql<boolean>`login_failures.window_ends_ms <= ${nowMs}`;
  const row = await db
    .insertInto('login_failures')
    .values({ key, failures: 1, window_ends_ms: nowMs + windowMs })
    .onConflict((oc) =>
      oc.column('key').doUpdateSet({
        failures: sql<number>`case when ${ended} then 1 else login_failures.failures + 1 end`,
        window_ends_ms: sql<number>`case when ${ended} then ${nowMs + windowMs} else login_failures.window_ends_ms end`,
      }),
    )
    .returning(['failures', 'window_ends_ms'])
    .executeTakeFirstOrThrow();
  return { failures: Number(row.failures), windowEndsMs: Number(row.window_ends_ms) };
}

/** Takes back one counted attempt (it turned out not to be a failure); never below 0. */
export async function uncountFailure(db: Executor, key: string): Promise<void> {
  await db.updateTable('login_failures').set({ failures: sql<number>`failures - 1` }).where('key', '=', key).where('failures', '>', 0).execute();
}

export async function clearFailures(db: Executor, key: string): Promise<void> {
  await db.deleteFrom('login_failures').where('key', '=', key).execute();
}

/** Housekeeping: windows that ended before `beforeMs` are forgotten. */
export async function purgeEndedFailures(db: Executor, beforeMs: number): Promise<void> {
  await db.deleteFrom('login_failures').where('window_ends_ms', '<=', beforeMs).execute();
}
