import { sql } from 'kysely';
import type { AppRow, BuildRow, PatchRow } from '../app-tables.js';
import type { TaskRow } from '../database.js';
import { IMPORT_TASK_TYPES } from '../../domain/task-types.js';
import type { ImportRow } from '../import-tables.js';
import type { Executor } from './common.js';

/**
 * SQL of the import pipeline (api.md §7.2): the imports table, build ids, builds and patches rows,
 * rotation, the app's processing / error state. Every function takes a connection or a
 * transaction: the queue handlers decide the transaction scope.
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

export const findAppById = (db: Executor, appId: string): Promise<AppRow | undefined> =>
  db.selectFrom('apps').selectAll().where('id', '=', appId).executeTakeFirst();

export async function orgNameOf(db: Executor, orgId: string): Promise<string | undefined> {
  const r = await db.selectFrom('orgs').select('name').where('id', '=', orgId).executeTakeFirst();
  return r?.name;
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
  const r = await db
    .updateTable('apps')
    .set({ next_build_id: buildId + 1 })
    .where('id', '=', app.id)
    .where('next_build_id', '=', buildId)
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) throw new Error('concurrent build id assignment');
  await db.updateTable('imports').set({ build_id: buildId }).where('task_name', '=', taskName).execute();
  await db
    .insertInto('builds')
    .values({
      app_id: app.id, build_id: buildId, build_name: imp.build_name, size_bytes: 0, image_bytes: 0, files: 0, dxf_name: null,
      state: 'importing', created_ms: nowMs,
    })
    .execute();
  return buildId;
}

/** Tasks of this import carry its build id (api.md §8 `buildId`). */
export async function setTasksBuildId(db: Executor, names: string[], buildId: number): Promise<void> {
  if (names.length === 0) return;
  await db.updateTable('tasks').set({ build_id: buildId }).where('name', 'in', names).execute();
}

/** Ready builds of the app older than `beforeBuildId`, newest first. */
export const readyBuildsBefore = (db: Executor, appId: string, beforeBuildId: number, limit: number): Promise<BuildRow[]> =>
  limit <= 0
    ? Promise.resolve([])
    : db
        .selectFrom('builds')
        .selectAll()
        .where('app_id', '=', appId)
        .where('state', '=', 'ready')
        .where('build_id', '<', beforeBuildId)
        .orderBy('build_id', 'desc')
        .limit(limit)
        .execute();

/** Every ready (kept) build of the app, newest first. */
export const readyBuilds = (db: Executor, appId: string): Promise<BuildRow[]> =>
  db.selectFrom('builds').selectAll().where('app_id', '=', appId).where('state', '=', 'ready').orderBy('build_id', 'desc').execute();

/** The newest ready build of the app (the one a deploy publishes). */
export const newestReadyBuild = (db: Executor, appId: string): Promise<BuildRow | undefined> =>
  db
    .selectFrom('builds')
    .selectAll()
    .where('app_id', '=', appId)
    .where('state', '=', 'ready')
    .orderBy('build_id', 'desc')
    .limit(1)
    .executeTakeFirst();

/** The build if it is kept and ready (release control: what PATCH /be/v1/apps `iCurBuild` may name). */
export const readyBuild = (db: Executor, appId: string, buildId: number): Promise<BuildRow | undefined> =>
  db.selectFrom('builds').selectAll().where('app_id', '=', appId).where('build_id', '=', buildId).where('state', '=', 'ready').executeTakeFirst();

export const patchesTo = (db: Executor, appId: string, toBuildId: number): Promise<PatchRow[]> =>
  db.selectFrom('patches').selectAll().where('app_id', '=', appId).where('to_build_id', '=', toBuildId).orderBy('from_build_id', 'desc').execute();

export interface ReadyBuild {
  buildId: number;
  sizeBytes: number;
  imageBytes: number;
  files: number;
  dxfName: string;
  patches: Array<{ fromBuildId: number; sizeBytes: number }>;
}

/**
 * Marks the build ready with its figures and replaces its patch rows, then rotates: only the
 * newest `maxBuilds` ready builds stay, patches from a build that left go too. Returns the ids
 * of the builds that left.
 */
export async function commitReadyBuild(db: Executor, appId: string, maxBuilds: number, b: ReadyBuild, nowMs: number): Promise<number[]> {
  await db
    .updateTable('builds')
    .set({ state: 'ready', size_bytes: b.sizeBytes, image_bytes: b.imageBytes, files: b.files, dxf_name: b.dxfName })
    .where('app_id', '=', appId)
    .where('build_id', '=', b.buildId)
    .execute();
  await db.deleteFrom('patches').where('app_id', '=', appId).where('to_build_id', '=', b.buildId).execute();
  if (b.patches.length > 0) {
    await db
      .insertInto('patches')
      .values(b.patches.map((p) => ({ app_id: appId, from_build_id: p.fromBuildId, to_build_id: b.buildId, size_bytes: p.sizeBytes, created_ms: nowMs })))
      .execute();
  }
  const ready = await db.selectFrom('builds').select('build_id').where('app_id', '=', appId).where('state', '=', 'ready').orderBy('build_id', 'desc').execute();
  // Release control: the live build is never rotated out (a staged push cannot take it away), nor
  // the build just made; the others fill the kept set newest first.
  const app = await db.selectFrom('apps').select('i_cur_build').where('id', '=', appId).executeTakeFirst();
  const live = app?.i_cur_build === null || app?.i_cur_build === undefined ? null : Number(app.i_cur_build);
  const ids = ready.map((r) => Number(r.build_id));
  const keep = new Set<number>([b.buildId, ...(live !== null && ids.includes(live) ? [live] : [])]);
  for (const id of ids) if (keep.size < Math.max(1, maxBuilds)) keep.add(id);
  const gone = ids.filter((id) => !keep.has(id));
  if (gone.length > 0) {
    await db.deleteFrom('builds').where('app_id', '=', appId).where('build_id', 'in', gone).execute();
    await db
      .deleteFrom('patches')
      .where('app_id', '=', appId)
      .where((eb) => eb.or([eb('from_build_id', 'in', gone), eb('to_build_id', 'in', gone)]))
      .execute();
  }
  await refreshAppSize(db, appId, nowMs);
  return gone;
}

/** A build that can never be imported: its row goes (its depot files are discarded by the caller). */
export async function dropBuild(db: Executor, appId: string, buildId: number): Promise<void> {
  await db.deleteFrom('patches').where('app_id', '=', appId).where('to_build_id', '=', buildId).execute();
  await db.deleteFrom('builds').where('app_id', '=', appId).where('build_id', '=', buildId).where('state', '<>', 'ready').execute();
}

/** apps.size_bytes = images of the kept builds + patches (bytes in the depot). */
export async function refreshAppSize(db: Executor, appId: string, nowMs: number): Promise<void> {
  const images = await db
    .selectFrom('builds')
    .select((e) => e.fn.coalesce(e.fn.sum<number>('image_bytes'), e.lit(0)).as('s'))
    .where('app_id', '=', appId)
    .executeTakeFirstOrThrow();
  const patches = await db
    .selectFrom('patches')
    .select((e) => e.fn.coalesce(e.fn.sum<number>('size_bytes'), e.lit(0)).as('s'))
    .where('app_id', '=', appId)
    .executeTakeFirstOrThrow();
  await db.updateTable('apps').set({ size_bytes: Number(images.s) + Number(patches.s), updated_ms: nowMs }).where('id', '=', appId).execute();
}

/** After a release of `buildId` is published: the app points at it, its error state is cleared, older patch rows go. */
export async function markPublished(db: Executor, appId: string, buildId: number, dxfName: string, nowMs: number): Promise<void> {
  await db.updateTable('apps').set({ i_cur_build: buildId, dxf_name: dxfName, error: null, locked: 0, updated_ms: nowMs }).where('id', '=', appId).execute();
  await db.deleteFrom('patches').where('app_id', '=', appId).where('to_build_id', '<>', buildId).execute();
  await refreshAppSize(db, appId, nowMs);
}

/** Puts the app in error state (api.md §7.1 `error`) and locks it against new imports. */
export async function markAppError(db: Executor, appId: string, error: Record<string, unknown>, nowMs: number): Promise<void> {
  await db.updateTable('apps').set({ error: JSON.stringify(error), locked: 1, updated_ms: nowMs }).where('id', '=', appId).execute();
}

/**
 * Recomputes `apps.processing`: 1 while a pipeline task of the app (other than `exceptTask`, the
 * one ending now) is submitted or running.
 */
export async function refreshProcessing(db: Executor, orgId: string, appName: string, exceptTask?: string): Promise<void> {
  const except = exceptTask ?? '';
  await sql`
    update apps set processing = case when exists (
      select 1 from tasks t where t.org_id = ${orgId} and t.app_name = ${appName}
        and t.type in (${sql.join([...IMPORT_TASK_TYPES])}) and t.status in ('submitted', 'running') and t.name <> ${except}
    ) then 1 else 0 end
    where org_id = ${orgId} and name = ${appName}`.execute(db);
}

export async function setProcessing(db: Executor, appId: string, nowMs: number): Promise<void> {
  await db.updateTable('apps').set({ processing: 1, updated_ms: nowMs }).where('id', '=', appId).execute();
}

/** Stores a task's warnings (api.md §8), unacknowledged. */
export async function setTaskWarnings(db: Executor, taskName: string, warnings: Array<{ code: string; message: string }>): Promise<void> {
  const stored = warnings.map((w) => ({ code: w.code, message: w.message, acknowledged: false }));
  await db.updateTable('tasks').set({ warnings: JSON.stringify(stored) }).where('name', '=', taskName).execute();
}

export type { TaskRow };
