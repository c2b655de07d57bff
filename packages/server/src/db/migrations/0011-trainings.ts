import type { Kysely } from 'kysely';

// Frozen once merged: never edit, add a new migration instead.
//
// FastStart, part 2 (issue 14): one training state per app (api.md §10). `next_training` is the
// counter of the image variants made from traces (`b0003-t001`, `-t002`...); `traces_at_last_run`
// is the app's trace count when trace processing last ran (auto processing starts again once
// `n_traces_reliable` more have arrived); `quality` is JSON (coverage, predicted preload).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('trainings')
    .addColumn('app_id', 'text', (c) => c.primaryKey().references('apps.id').onDelete('cascade'))
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('n_traces_reliable', 'integer', (c) => c.notNull().defaultTo(12))
    .addColumn('auto', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('traces_at_last_run', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_processed_ms', 'bigint')
    .addColumn('next_training', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('quality', 'text')
    .addColumn('created_ms', 'bigint', (c) => c.notNull())
    .addColumn('updated_ms', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('trainings_org_idx').on('trainings').column('org_id').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('trainings').execute();
}
