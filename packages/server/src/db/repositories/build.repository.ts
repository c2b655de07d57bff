import type { BuildRow, PatchRow } from '../app-tables.js';
import { findAppById, refreshAppSize, setLiveBuild } from './app.repository.js';
import type { Executor } from './common.js';

/**
 * The builds and patches tables (api.md §7.1 `builds`, §7.2): the rows the import pipeline records,
 * their rotation, and what publishing a release drops. The one module that writes them; the app's
 * figures that depend on them (`apps.size_bytes`, the live build) are set through app.repository.
 */

/** The `importing` row of a build that just got its id (figures follow in commitReadyBuild). */
export async function insertImportingBuild(db: Executor, appId: string, buildId: number, buildName: string | null, nowMs: number): Promise<void> {
  await db
    .insertInto('builds')
    .values({
      app_id: appId, build_id: buildId, build_name: buildName, size_bytes: 0, image_bytes: 0, files: 0, dxf_name: null,
      state: 'importing', created_ms: nowMs,
    })
    .execute();
}

/** The build of the app, whatever its state. */
export const findBuild = (db: Executor, appId: string, buildId: number): Promise<BuildRow | undefined> =>
  db.selectFrom('builds').selectAll().where('app_id', '=', appId).where('build_id', '=', buildId).executeTakeFirst();

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

/** Target build ids of the app's patches to builds other than `buildId` (what publishing `buildId` drops). */
export async function patchTargetsOtherThan(db: Executor, appId: string, buildId: number): Promise<number[]> {
  const rows = await db.selectFrom('patches').select('to_build_id').distinct().where('app_id', '=', appId).where('to_build_id', '<>', buildId).execute();
  return rows.map((r) => Number(r.to_build_id));
}

/** Ids of every build of the app (any state) and its patches' build pairs: what the depot must keep. */
export async function buildsAndPatchesOfApp(db: Executor, appId: string): Promise<{ buildIds: number[]; patches: Array<{ fromBuildId: number; toBuildId: number }> }> {
  const builds = await db.selectFrom('builds').select('build_id').where('app_id', '=', appId).execute();
  const patches = await db.selectFrom('patches').select(['from_build_id', 'to_build_id']).where('app_id', '=', appId).execute();
  return {
    buildIds: builds.map((b) => Number(b.build_id)),
    patches: patches.map((p) => ({ fromBuildId: Number(p.from_build_id), toBuildId: Number(p.to_build_id) })),
  };
}

/** Builds per app id, oldest first. */
export async function buildsOfApps(db: Executor, appIds: string[]): Promise<Map<string, BuildRow[]>> {
  const out = new Map<string, BuildRow[]>(appIds.map((id) => [id, []]));
  if (appIds.length === 0) return out;
  const rows = await db.selectFrom('builds').selectAll().where('app_id', 'in', appIds).orderBy('app_id').orderBy('build_id').execute();
  for (const r of rows) out.get(r.app_id)?.push(r);
  return out;
}

/** Patches per app id, by target then source build. */
export async function patchesOfApps(db: Executor, appIds: string[]): Promise<Map<string, PatchRow[]>> {
  const out = new Map<string, PatchRow[]>(appIds.map((id) => [id, []]));
  if (appIds.length === 0) return out;
  const rows = await db
    .selectFrom('patches')
    .selectAll()
    .where('app_id', 'in', appIds)
    .orderBy('app_id')
    .orderBy('to_build_id')
    .orderBy('from_build_id')
    .execute();
  for (const r of rows) out.get(r.app_id)?.push(r);
  return out;
}

/**
 * A trained image replaced the build's image: its new variant and stored bytes, only while the build
 * is still ready with the variant `fromDxfName` (a concurrent import or training may have changed it).
 * True when this call made the change.
 */
export async function replaceBuildImage(db: Executor, appId: string, buildId: number, fromDxfName: string | null, dxfName: string, imageBytes: number): Promise<boolean> {
  const b = await db.selectFrom('builds').select(['dxf_name', 'state']).where('app_id', '=', appId).where('build_id', '=', buildId).executeTakeFirst();
  if (!b || b.state !== 'ready' || b.dxf_name !== fromDxfName) return false;
  await db.updateTable('builds').set({ dxf_name: dxfName, image_bytes: imageBytes }).where('app_id', '=', appId).where('build_id', '=', buildId).execute();
  return true;
}

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
  const app = await findAppById(db, appId);
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


/**
 * After a release of `buildId` is published: the app points at it (its error state cleared), patch
 * rows to other builds go, the app's size follows.
 */
export async function markPublished(db: Executor, appId: string, buildId: number, dxfName: string, nowMs: number): Promise<void> {
  await setLiveBuild(db, appId, buildId, dxfName, nowMs);
  await db.deleteFrom('patches').where('app_id', '=', appId).where('to_build_id', '<>', buildId).execute();
  await refreshAppSize(db, appId, nowMs);
}
