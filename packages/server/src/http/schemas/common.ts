import { Type, type TSchema } from '@sinclair/typebox';
import { ErrorResponse } from '@rockit/contract';
import { MAX_LIMIT, MAX_OFFSET, type RawListQuery } from '../../domain/list.js';

/** Shared TypeBox schemas of the routes. Response schemas are the whitelist of what leaves the server. */

// The building blocks live in the contract package (the CLI reads the same types); the server-only
// parts of a route schema (error responses, list queries, security) stay here.
export { AppName, ErrorResponse, Label, ListMeta, Name, Ok, OkEmpty, PermissionsInput, PermissionsSchema, UnixSeconds } from '@rockit/contract';

const ERROR_TEXT: Record<number, string> = {
  400: 'missing-param, invalid-param, invalid-json or conflicting-credentials',
  401: 'token-missing, token-expired, token-invalid or invalid-credentials',
  403: 'forbidden (with `permission`) or account-disabled',
  404: 'not-found (never reveals objects of other organizations)',
  409: 'already-exists, in-use, app-locked or invalid-state',
  413: 'payload-too-large',
  415: 'unsupported-media-type',
  429: 'rate-limited (Retry-After header set)',
  500: 'internal (with requestId)',
  503: 'unavailable',
};

/** Error responses of a route: the given statuses plus those any route can answer (400, 404, 500). */
export function errorResponses(...statuses: number[]): Record<number, TSchema> {
  const out: Record<number, TSchema> = {};
  for (const s of new Set([400, 404, 500, ...statuses])) out[s] = Type.Ref(ErrorResponse, { description: ERROR_TEXT[s] });
  return out;
}

/** Error statuses every body-carrying route can answer besides its own. */
export const BODY_ERRORS = [413, 415] as const;

export const ListQuery = {
  // Bounded so that the databases' 64-bit OFFSET never overflows (2^63 answered 500).
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_OFFSET, description: 'default 0' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT, description: 'default 10' })),
  'order[]': Type.Optional(Type.Array(Type.String(), { description: 'field, +field, -field or [-field]; repeatable' })),
  order: Type.Optional(Type.Array(Type.String(), { description: 'alias of order[]' })),
  'fields[]': Type.Optional(Type.Array(Type.String(), { description: 'projection; repeatable or comma-separated' })),
  fields: Type.Optional(Type.Array(Type.String(), { description: 'alias of fields[]' })),
};

export function toRawListQuery(q: { offset?: number; limit?: number; 'order[]'?: string[]; order?: string[]; 'fields[]'?: string[]; fields?: string[] }): RawListQuery {
  const order = [...(q['order[]'] ?? []), ...(q.order ?? [])];
  const fields = [...(q['fields[]'] ?? []), ...(q.fields ?? [])];
  return { offset: q.offset, limit: q.limit, order, fields };
}

/** Security requirement objects for the OpenAPI document. */
type SecurityRequirement = Array<Record<string, string[]>>;
export const Security: Record<'admin' | 'session' | 'user' | 'none', SecurityRequirement> = {
  admin: [{ adminToken: [] }],
  session: [{ sessionToken: [] }],
  user: [{ authToken: [] }, { bearer: [] }, { apiKeyOrg: [], apiKeyUser: [], apiKey: [] }],
  none: [],
};
