import type { Kysely } from 'kysely';

// Frozen once merged: never edit, add a new migration instead.
//
// Resumable uploads (api.md §7.2, "resumable in cluster mode via S3 multipart"): an upload is
// received part by part into a multipart put of the blob store; the parts stored so far and the
// PUT that currently writes (a short lease, so that a dead server's PUT can be taken over) are
// kept on the import, where any API node can continue the upload. A tar received in one PUT is
// hashed on the way in (its digest and compression are kept, so dltar does not read it again).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('imports').addColumn('upload_id', 'text').execute();
  await db.schema.alterTable('imports').addColumn('upload_parts', 'text').execute();
  await db.schema.alterTable('imports').addColumn('upload_part_bytes', 'bigint').execute();
  await db.schema.alterTable('imports').addColumn('upload_received_bytes', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('imports').addColumn('upload_total_bytes', 'bigint').execute();
  await db.schema.alterTable('imports').addColumn('upload_writer', 'text').execute();
  await db.schema.alterTable('imports').addColumn('upload_writer_until_ms', 'bigint').execute();
  // When one PUT carried the whole tar, the server hashed and sniffed it on the way in: dltar need
  // not read it back.
  await db.schema.alterTable('imports').addColumn('upload_sha256', 'text').execute();
  await db.schema.alterTable('imports').addColumn('upload_compression', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const column of ['upload_compression', 'upload_sha256', 'upload_writer_until_ms', 'upload_writer', 'upload_total_bytes', 'upload_received_bytes', 'upload_part_bytes', 'upload_parts', 'upload_id']) {
    await db.schema.alterTable('imports').dropColumn(column).execute();
  }
}
