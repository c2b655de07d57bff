import type { Kysely } from 'kysely';

// Frozen once merged: never edit, add a new migration instead.
//
// Apps (api.md §7.1) with the tables the import pipeline fills (builds, patches), deployments
// (§9.1, secrets sealed with the installation key), which deployments an app names, and what was
// published of an app to a deployment (consumption, §12).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('deployments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('origin_prefix', 'text')
    .addColumn('s3_endpoint', 'text')
    .addColumn('s3_region', 'text')
    .addColumn('s3_bucket', 'text')
    .addColumn('s3_access_key_id', 'text')
    .addColumn('s3_secret_sealed', 'text')
    .addColumn('s3_force_path_style', 'integer')
    .addColumn('fs_path', 'text')
    .addColumn('download_auth_type', 'text')
    .addColumn('download_auth_key_sealed', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .addColumn('checked_ms', 'bigint')
    .addColumn('created_ms', 'bigint', (c) => c.notNull())
    .addColumn('updated_ms', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('deployments_org_name_unique', ['org_id', 'name'])
    .execute();

  await db.schema
    .createTable('apps')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('max_builds', 'integer', (c) => c.notNull())
    .addColumn('i_cur_build', 'integer')
    .addColumn('dxf_name', 'text')
    .addColumn('next_build_id', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('processing', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('exporting', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('locked', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'text')
    .addColumn('size_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('uploads_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('traces_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_ms', 'bigint', (c) => c.notNull())
    .addColumn('updated_ms', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('apps_org_name_unique', ['org_id', 'name'])
    .execute();

  await db.schema
    .createTable('app_deployments')
    .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
    // Cascade so an org can be deleted in one statement; the deployment service refuses (409 in-use)
    // to delete a deployment an app names, checking in the deleting transaction.
    .addColumn('deployment_id', 'text', (c) => c.notNull().references('deployments.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('app_deployments_pk', ['app_id', 'deployment_id'])
    .execute();
  await db.schema.createIndex('app_deployments_deployment_idx').on('app_deployments').column('deployment_id').execute();

  await db.schema
    .createTable('builds')
    .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
    .addColumn('build_id', 'integer', (c) => c.notNull())
    .addColumn('build_name', 'text')
    .addColumn('size_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('image_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('files', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('dxf_name', 'text')
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('created_ms', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('builds_pk', ['app_id', 'build_id'])
    .execute();

  await db.schema
    .createTable('patches')
    .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
    .addColumn('from_build_id', 'integer', (c) => c.notNull())
    .addColumn('to_build_id', 'integer', (c) => c.notNull())
    .addColumn('size_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_ms', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('patches_pk', ['app_id', 'from_build_id', 'to_build_id'])
    .execute();

  await db.schema
    .createTable('app_publications')
    .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
    .addColumn('deployment_id', 'text', (c) => c.notNull().references('deployments.id').onDelete('cascade'))
    .addColumn('size_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_ms', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('app_publications_pk', ['app_id', 'deployment_id'])
    .execute();
  await db.schema.createIndex('app_publications_deployment_idx').on('app_publications').column('deployment_id').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['app_publications', 'patches', 'builds', 'app_deployments', 'apps', 'deployments']) {
    await db.schema.dropTable(t).execute();
  }
}
