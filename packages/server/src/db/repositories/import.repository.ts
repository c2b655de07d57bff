import type { ImportRow } from '../import-tables.js';
import { findAppById, takeNextBuildId } from './app.repository.js';
import { insertImportingBuild } from './build.repository.js';
import type { Executor } from './common.js';

/**
 * The imports table (api.md §7.2): one row per import, its resumable upload (the writer's lease, the
 * stored parts) and the links of its task chain. The one module that writes it; every function takes
 * a connection or a transaction: the queue handlers decide the transaction scope.
 */

export async function insertImport(db: Executor, row: ImportRow): Promise<void> {
  await db.insertInto('imports').values(row).execute();
}

export const findImport = (db: Executor, taskName: string): Promise<ImportRow | undefined> =>
  db.selectFrom('imports').selectAll().where('task_name', '=', taskName).executeTakeFirst();

/** The import that produced this build of the app (for its manifest file name). */
export const findImportOfBuild = (db: Executor, appId: string, buildId: number): Promise<ImportRow | undefined> =>
  db.selectFrom('imports').selectAll().where('app_id', '=', appId).where('build_id', '=', buildId).executeTakeFirst();

/**
 * Moves the upload from `from` to `to` (compare-and-set), whoever is writing it (a PUT in
 * progress then finds it closed). True when this call made the change. (`received` is set by
 * `markUploadReceived`, by the writer that completed the upload.)
 */
export async function setUploadState(db: Executor, taskName: string, from: 'waiting', to: 'expired'): Promise<boolean> {
  const r = await db.updateTable('imports').set({ upload_state: to }).where('task_name', '=', taskName).where('upload_state', '=', from).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/**
 * Makes `writer` the one PUT receiving the upload (api.md §7.2, resumable): only while the upload
 * waits, no other writer's lease is running, and — when `atOffset` is given — exactly that many
 * bytes are stored (the client continues where the server is). True when this call took it.
 *
 * A writer's lease runs `leaseMs` from its last progress (a byte received or a part stored: the
 * writer sets `upload_writer_until_ms` = last progress + lease), so `until - leaseMs` is when it
 * last moved. With `stallMs`, a piece at the right offset also takes over a writer that has not
 * moved for that long (a half-open connection, or a node that died): the stalled writer finds
 * the upload no longer its own at its next step and stores nothing more.
 */
export async function claimUploadWriter(
  db: Executor,
  taskName: string,
  writer: string,
  nowMs: number,
  leaseMs: number,
  atOffset?: number,
  stallMs?: number,
): Promise<boolean> {
  let u = db
    .updateTable('imports')
    .set({ upload_writer: writer, upload_writer_until_ms: nowMs + leaseMs })
    .where('task_name', '=', taskName)
    .where('upload_state', '=', 'waiting')
    .where((eb) => {
      const free = [eb('upload_writer', 'is', null), eb('upload_writer_until_ms', '<', nowMs)];
      if (atOffset !== undefined && stallMs !== undefined) free.push(eb('upload_writer_until_ms', '<', nowMs + leaseMs - stallMs));
      return eb.or(free);
    });
  if (atOffset !== undefined) u = u.where('upload_received_bytes', '=', atOffset);
  const r = await u.executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Whether `writer` still holds the upload (a stalled writer may have been taken over). */
export async function holdsUpload(db: Executor, taskName: string, writer: string): Promise<boolean> {
  const row = await db
    .selectFrom('imports')
    .select('task_name')
    .where('task_name', '=', taskName)
    .where('upload_writer', '=', writer)
    .where('upload_state', '=', 'waiting')
    .executeTakeFirst();
  return row !== undefined;
}

/** What a writer changes on the upload as parts arrive; false when `writer` no longer holds it. */
export async function updateUploadAsWriter(
  db: Executor,
  taskName: string,
  writer: string,
  changes: Partial<Pick<ImportRow, 'upload_id' | 'upload_parts' | 'upload_part_bytes' | 'upload_received_bytes' | 'upload_total_bytes' | 'upload_writer_until_ms'>>,
): Promise<boolean> {
  const r = await db
    .updateTable('imports')
    .set(changes)
    .where('task_name', '=', taskName)
    .where('upload_writer', '=', writer)
    .where('upload_state', '=', 'waiting')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Ends `writer`'s hold on the upload (after its PUT ended, however it ended). */
export async function releaseUploadWriter(db: Executor, taskName: string, writer: string): Promise<void> {
  await db
    .updateTable('imports')
    .set({ upload_writer: null, upload_writer_until_ms: null })
    .where('task_name', '=', taskName)
    .where('upload_writer', '=', writer)
    .execute();
}

/**
 * The whole tar is stored: `waiting` → `received`, by the writer that completed it, before the
 * deadline, with its digest when that writer saw every byte. True when this call made the change.
 */
export async function markUploadReceived(
  db: Executor,
  taskName: string,
  writer: string,
  nowMs: number,
  digest?: { sha256: string; compression: 'none' | 'gzip' | 'zstd' },
): Promise<boolean> {
  const r = await db
    .updateTable('imports')
    .set({
      upload_state: 'received', upload_writer: null, upload_writer_until_ms: null,
      upload_sha256: digest?.sha256 ?? null, upload_compression: digest?.compression ?? null,
    })
    .where('task_name', '=', taskName)
    .where('upload_writer', '=', writer)
    .where('upload_state', '=', 'waiting')
    .where('expires_ms', '>', nowMs)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Uploads of the org still waiting for bytes that hold stored parts (to drop them when the org goes). */
export const pendingUploadsOfOrg = (db: Executor, orgId: string): Promise<Array<{ tar_key: string; upload_id: string | null }>> =>
  db.selectFrom('imports').select(['tar_key', 'upload_id']).where('org_id', '=', orgId).where('upload_state', '=', 'waiting').where('upload_id', 'is not', null).execute();

/** Whether an upload still waiting for bytes uses this multipart upload (else nobody will finish it). */
export async function isUploadInUse(db: Executor, uploadId: string): Promise<boolean> {
  const r = await db.selectFrom('imports').select('task_name').where('upload_id', '=', uploadId).where('upload_state', '=', 'waiting').executeTakeFirst();
  return r !== undefined;
}

/** Links the follow-up task once; false when another run already linked one (then enqueue nothing). */
export async function claimFollowUp(db: Executor, taskName: string, field: 'mkraw_task' | 'deploy_task', followUp: string): Promise<boolean> {
  const r = await db.updateTable('imports').set({ [field]: followUp }).where('task_name', '=', taskName).where(field, 'is', null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function updateImport(db: Executor, taskName: string, changes: Partial<Pick<ImportRow, 'dxf_name' | 'manifest_file'>>): Promise<void> {
  await db.updateTable('imports').set(changes).where('task_name', '=', taskName).execute();
}

/**
 * Gives the import its build id (the app's next one) and an `importing` builds row, once: a second
 * call returns the id already given. Returns undefined when the import or the app is gone.
 */
export async function assignBuildId(db: Executor, taskName: string, nowMs: number): Promise<number | undefined> {
  const imp = await findImport(db, taskName);
  if (!imp) return undefined;
  if (imp.build_id !== null) return Number(imp.build_id);
  const app = await findAppById(db, imp.app_id);
  if (!app) return undefined;
  const buildId = Number(app.next_build_id);
  await takeNextBuildId(db, app.id, buildId);
  await db.updateTable('imports').set({ build_id: buildId }).where('task_name', '=', taskName).execute();
  await insertImportingBuild(db, app.id, buildId, imp.build_name, nowMs);
  return buildId;
}
