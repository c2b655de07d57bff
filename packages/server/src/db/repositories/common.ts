import { sql, type Kysely, type RawBuilder, type SelectQueryBuilder } from 'kysely';
import type { Database } from '../database.js';

/** A connection or a transaction; repositories accept either so services decide transaction scope. */
export type Executor = Kysely<Database>;

export interface ListWindow {
  offset: number;
  limit: number;
  /** Column-level order, already mapped from API field names. */
  order: Array<{ column: string; desc: boolean }>;
}

/** Applies order (with a stable tiebreaker), offset and limit. */
export function applyWindow<DB, TB extends keyof DB, O>(
  q: SelectQueryBuilder<DB, TB, O>,
  w: ListWindow,
  tiebreaker: string,
): SelectQueryBuilder<DB, TB, O> {
  let out = q;
  for (const o of w.order) out = out.orderBy(o.column as any, o.desc ? 'desc' : 'asc');
  out = out.orderBy(tiebreaker as any, 'asc');
  return out.offset(w.offset).limit(w.limit);
}

/** Escapes LIKE wildcards so a partial-match filter matches the text literally. */
export const likeContains = (s: string): string => `%${s.replace(/[\\%_]/g, (c) => '\\' + c)}%`;

/**
 * Case-insensitive `column contains text`, wildcards in `text` taken literally, the same on both
 * dialects (SQLite's LIKE ignores ASCII case, PostgreSQL's does not: lower() both sides).
 */
export const contains = (column: string, text: string): RawBuilder<boolean> =>
  sql<boolean>`lower(${sql.ref(column)}) like ${likeContains(text.toLowerCase())} escape '\\'`;
