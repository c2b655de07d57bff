import type { Kysely } from 'kysely';

// Frozen once merged: never edit, add a new migration instead.
//
// Imports (api.md §7.2): one row per POST /be/v1/builds, keyed by its dltar task; holds the upload
// token's hash and state and links the pipeline's tasks so their handlers are idempotent.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('imports')
    .addColumn('task_name', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('url', 'text')
    .addColumn('size_bytes', 'bigint')
    .addColumn('sha256', 'text')
    .addColumn('build_name', 'text')
    .addColumn('upload_token_hash', 'text')
    .addColumn('upload_state', 'text')
    .addColumn('expires_ms', 'bigint')
    .addColumn('tar_key', 'text', (c) => c.notNull())
    .addColumn('build_id', 'integer')
    .addColumn('dxf_name', 'text')
    .addColumn('manifest_file', 'text')
    .addColumn('mkraw_task', 'text')
    .addColumn('deploy_task', 'text')
    .addColumn('created_ms', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('imports_app_build_idx').on('imports').columns(['app_id', 'build_id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('imports').execute();
}
