import { invalidParam } from './errors.js';

/** Parsed collection query (spec/api.md §1.3). */
export interface ListQuery {
  offset: number;
  limit: number;
  order: Array<{ field: string; desc: boolean }>;
  /** Projection; undefined = every field. */
  fields?: string[];
}

export interface RawListQuery {
  offset?: number;
  limit?: number;
  order?: string[];
  fields?: string[];
}

/** What a collection offers: orderable fields, projectable fields, default order. */
export interface ListSpec {
  orderable: readonly string[];
  fields: readonly string[];
  defaultOrder: ReadonlyArray<{ readonly field: string; readonly desc: boolean }>;
}

export const DEFAULT_LIMIT = 10;
export const MAX_LIMIT = 1000;
/** Largest offset: exact in a JavaScript number and far inside the databases' 64-bit OFFSET. */
export const MAX_OFFSET = Number.MAX_SAFE_INTEGER;

/**
 * Normalises offset/limit/order[]/fields[]. `order` accepts `name`, `+name`, `-name` and the
 * bracket form `[-name]`; `fields` items may be comma-separated. Unknown names are invalid-param.
 */
export function parseListQuery(
  raw: RawListQuery,
  spec: ListSpec,
): ListQuery {
  const offset = raw.offset ?? 0;
  const limit = raw.limit ?? DEFAULT_LIMIT;
  if (!Number.isSafeInteger(offset) || offset < 0) throw invalidParam('offset', `must be an integer in 0..${MAX_OFFSET}`);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw invalidParam('limit', `must be an integer in 1..${MAX_LIMIT}`);
  const order: ListQuery['order'] = [];
  for (const item of raw.order ?? []) {
    let s = item.trim();
    if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1).trim();
    let desc = false;
    if (s.startsWith('-') || s.startsWith('+')) {
      desc = s[0] === '-';
      s = s.slice(1);
    }
    if (!spec.orderable.includes(s)) throw invalidParam('order[]', `cannot order by '${s}'`);
    order.push({ field: s, desc });
  }
  let fields: string[] | undefined;
  if (raw.fields && raw.fields.length > 0) {
    fields = raw.fields.flatMap((f) => f.split(',')).map((f) => f.trim()).filter((f) => f.length > 0);
    for (const f of fields) if (!spec.fields.includes(f)) throw invalidParam('fields[]', `has no field '${f}'`);
  }
  return { offset, limit, order: order.length > 0 ? order : spec.defaultOrder.map((o) => ({ ...o })), fields };
}

/** Keeps only the requested fields of a DTO (all when `fields` is undefined). */
export function project<T extends object>(item: T, fields: string[] | undefined): Partial<T> {
  if (!fields) return item;
  const out: Partial<T> = {};
  for (const f of fields) if (f in item) (out as any)[f] = (item as any)[f];
  return out;
}

/** Result of a list service method. */
export interface Page<T> {
  total: number;
  offset: number;
  limit: number;
  items: Array<Partial<T>>;
}
