import { sql, type Kysely } from 'kysely';
import type { Executor } from './common.js';

/** Table of migration 0007: failed logins per key in fixed windows. */
export interface LoginFailuresTable {
  /** sha256 hex of the throttled thing ((org, username) or a client address): no names or addresses stored. */
  key: string;
  failures: number;
  window_ends_ms: number;
}

type Db = Kysely<{ login_failures: LoginFailuresTable }>;
const q = (db: Executor): Db => db as unknown as Db;

/** The live windows (not ended at `nowMs`) of the given keys. */
export async function liveFailures(db: Executor, keys: string[], nowMs: number): Promise<Array<{ key: string; failures: number; windowEndsMs: number }>> {
  if (keys.length === 0) return [];
  const rows = await q(db)
    .selectFrom('login_failures')
    .selectAll()
    .where('key', 'in', keys)
    .where('window_ends_ms', '>', nowMs)
    .execute();
  return rows.map((r) => ({ key: r.key, failures: Number(r.failures), windowEndsMs: Number(r.window_ends_ms) }));
}

/**
 * Counts one failure for `key`, atomically (two nodes counting at once both count): a window that
 * has ended starts again at 1 and ends `windowMs` from now.
 */
export async function countFailure(db: Executor, key: string, nowMs: number, windowMs: number): Promise<void> {
  const ended = sql<boolean>`login_failures.window_ends_ms <= ${nowMs}`;
  await q(db)
    .insertInto('login_failures')
    .values({ key, failures: 1, window_ends_ms: nowMs + windowMs })
    .onConflict((oc) =>
      oc.column('key').doUpdateSet({
        failures: sql<number>`case when ${ended} then 1 else login_failures.failures + 1 end`,
        window_ends_ms: sql<number>`case when ${ended} then ${nowMs + windowMs} else login_failures.window_ends_ms end`,
      }),
    )
    .execute();
}

export async function clearFailures(db: Executor, key: string): Promise<void> {
  await q(db).deleteFrom('login_failures').where('key', '=', key).execute();
}

/** Housekeeping: windows that ended before `beforeMs` are forgotten. */
export async function purgeEndedFailures(db: Executor, beforeMs: number): Promise<void> {
  await q(db).deleteFrom('login_failures').where('window_ends_ms', '<=', beforeMs).execute();
}
