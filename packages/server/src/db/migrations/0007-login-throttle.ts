import type { Kysely } from 'kysely';

// Frozen once merged: never edit, add a new migration instead.
//
// Login throttling shared by every API node (api.md §1.2 `429 rate-limited`): failed logins are
// counted per key — a hash of (org, username) or of the client address — in fixed windows, in the
// database, so a cluster does not multiply the allowance by its node count.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('login_failures')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .addColumn('window_ends_ms', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('login_failures_window_idx').on('login_failures').column('window_ends_ms').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('login_failures').execute();
}
