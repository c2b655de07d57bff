import { sql, type CompiledQuery, type Kysely, type RawBuilder, type SelectQueryBuilder } from 'kysely';
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
export const contains = (column: string, text: string): RawBuilder<boolean> => likePattern(column, likeContains(text.toLowerCase()));

/** `lower(column) like pattern` with `\\` as the escape character (the pattern from likeContains of lower-cased text). */
export const likePattern = (column: string, pattern: string): RawBuilder<boolean> =>
  sql<boolean>`lower(${sql.ref(column)}) like ${pattern} escape '\\'`;

const SENTINEL = '\u0000rk-param:';

/**
 * Statements compiled by Kysely once per database handle and shape instead of on every call (the hot
 * path of every authenticated request: building and compiling a 20-column join cost about as much as
 * running it on SQLite). `build` receives placeholder values; each call runs the compiled SQL with the
 * real values in their places. `shape` names everything else the SQL text depends on (which filters are
 * present, the order); at most `maxShapes` shapes are kept per handle, others are compiled each time.
 */
export function compiledPerShape<P extends Record<string, unknown>, R>(names: ReadonlyArray<keyof P & string>, maxShapes = 64) {
  const cache = new WeakMap<Executor, Map<string, CompiledQuery<R>>>();
  return async (db: Executor, shape: string, build: (p: P) => { compile(): CompiledQuery<R> }, values: P): Promise<R[]> => {
    let shapes = cache.get(db);
    if (!shapes) {
      shapes = new Map();
      cache.set(db, shapes);
    }
    let compiled = shapes.get(shape);
    if (!compiled) {
      const placeholders = Object.fromEntries(names.map((n) => [n, SENTINEL + n])) as P;
      compiled = build(placeholders).compile();
      if (shapes.size < maxShapes) shapes.set(shape, compiled);
    }
    const parameters = compiled.parameters.map((p) => (typeof p === 'string' && p.startsWith(SENTINEL) ? values[p.slice(SENTINEL.length)] : p));
    return (await db.executeQuery<R>({ ...compiled, parameters })).rows;
  };
}

/** A statement of one fixed shape, compiled once per database handle (see compiledPerShape). */
export function compiledOnce<P extends Record<string, unknown>, R>(
  names: ReadonlyArray<keyof P & string>,
  build: (db: Executor, p: P) => { compile(): CompiledQuery<R> },
): (db: Executor, values: P) => Promise<R[]> {
  const run = compiledPerShape<P, R>(names, 1);
  return (db, values) => run(db, '', (p) => build(db, p), values);
}
