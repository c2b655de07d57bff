import type { Kysely } from 'kysely';

// Frozen once merged: never edit, add a new migration instead.
//
// FastStart, part 1 (issue 14): download keys of an app (api.md §2.3 resource `keys`; the secret
// is stored as its sha256 only) and the play traces clients upload (`POST /client/v1/traces`),
// whose bodies live in the blob store under `blob_key`.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('download_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_ms', 'bigint', (c) => c.notNull())
    .addColumn('last_used_ms', 'bigint')
    .execute();
  await db.schema.createIndex('download_keys_app_idx').on('download_keys').column('app_id').execute();

  await db.schema
    .createTable('traces')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
    .addColumn('build_id', 'integer')
    .addColumn('dxf_name', 'text')
    .addColumn('session_id', 'text', (c) => c.notNull())
    .addColumn('first_session', 'integer', (c) => c.notNull())
    .addColumn('records', 'integer', (c) => c.notNull())
    .addColumn('bytes_read', 'bigint', (c) => c.notNull())
    .addColumn('duration_ms', 'bigint', (c) => c.notNull())
    .addColumn('coverage', 'real', (c) => c.notNull())
    .addColumn('blob_key', 'text', (c) => c.notNull())
    .addColumn('size_bytes', 'bigint', (c) => c.notNull())
    .addColumn('created_ms', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('traces_app_created_idx').on('traces').columns(['app_id', 'created_ms']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('traces').execute();
  await db.schema.dropTable('download_keys').execute();
}
