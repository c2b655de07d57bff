import type { Kysely } from 'kysely';

// Frozen once merged: never edit, add a new migration instead.
//
// Issue 11: a task keeps the retry backoff it was enqueued with (as pg-boss keeps retry settings on each
// job): JSON `{baseMs, factor, maxMs, jitter}`; null for tasks enqueued before this migration (their
// type's current policy applies).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('tasks').addColumn('retry_policy', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('tasks').dropColumn('retry_policy').execute();
}
