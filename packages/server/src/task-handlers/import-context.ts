import type { Kysely } from 'kysely';
import type { AppRow } from '../db/app-tables.js';
import type { Database } from '../db/database.js';
import type { ImportRow } from '../db/import-tables.js';
import { findAppById } from '../db/repositories/app.repository.js';
import { findImport } from '../db/repositories/import.repository.js';
import { orgNameOf } from '../db/repositories/org.repository.js';
import { PermanentTaskError, type TaskContext, type TaskHandler } from '../queue/worker.js';

/** The import an import task works on, with its app and org name, read once at the start of each attempt. */
export interface ImportContext {
  imp: ImportRow;
  app: AppRow;
  orgName: string;
}

/** A handler of an import task: the task's attempt and its loaded import. */
export type ImportTaskHandler = (ctx: TaskContext, loaded: ImportContext) => Promise<unknown>;

/**
 * Reads import `importTask`, its app and its org. Throws PermanentTaskError when any of them is gone
 * (the app or org was deleted meanwhile: no retry brings it back).
 */
export async function loadImportContext(db: Kysely<Database>, importTask: string): Promise<ImportContext> {
  const imp = await findImport(db, importTask);
  const app = imp && (await findAppById(db, imp.app_id));
  const orgName = imp && (await orgNameOf(db, imp.org_id));
  if (!imp || !app || orgName === undefined) throw new PermanentTaskError('the app of this import was deleted');
  return { imp, app, orgName };
}

/** A task handler that loads the import named by `importTaskOf(ctx)` once per attempt and hands it to `handler`. */
export function withImportContext(db: Kysely<Database>, importTaskOf: (ctx: TaskContext) => string, handler: ImportTaskHandler): TaskHandler {
  return async (ctx) => handler(ctx, await loadImportContext(db, importTaskOf(ctx)));
}
