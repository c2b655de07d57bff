import { Type, type TSchema } from '@sinclair/typebox';
import { MAX_LIMIT, MAX_OFFSET, type RawListQuery } from '../../domain/list.js';
import { APP_NAME_PATTERN, APP_NAME_RULE, NAME_PATTERN } from '../../domain/names.js';
import { RESOURCE_MAX, RESOURCES } from '../../domain/permissions.js';

/** Shared TypeBox schemas. Response schemas are the whitelist of what leaves the server. */

/** An app name: NAME_PATTERN plus `-` after the first character (decided, issue 13). */
export const AppName = (description = `an app name: ${APP_NAME_PATTERN} (${APP_NAME_RULE})`) => Type.String({ pattern: APP_NAME_PATTERN, description });
export const Name = (description = 'a name: ^[A-Za-z0-9_]{2,50}$') => Type.String({ pattern: NAME_PATTERN, description });
export const UnixSeconds = (description: string) => Type.Integer({ description: `${description} (UNIX seconds)` });
export const Label = Type.String({ minLength: 1, maxLength: 200 });

export const ErrorResponse = Type.Object(
  {
    status: Type.Literal('error'),
    error: Type.String({ description: 'stable machine name (spec/api.md §1.2)' }),
    message: Type.String({ description: 'for people' }),
    param: Type.Optional(Type.String({ description: 'the parameter at fault' })),
    permission: Type.Optional(Type.String({ description: 'the permission lacking, e.g. apps.create' })),
    requestId: Type.Optional(Type.String({ description: 'with internal errors: the id under which the error was logged' })),
  },
  { additionalProperties: true, $id: 'ErrorResponse', title: 'Error' },
);

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

export const Ok = <T extends Record<string, TSchema>>(props: T, description = 'success') =>
  Type.Object({ status: Type.Literal('success'), ...props }, { description });

export const OkEmpty = Ok({}, 'done');

export const PermissionsSchema = Type.Object(
  Object.fromEntries(RESOURCES.map((r) => [r, Type.Integer({ minimum: 0, maximum: RESOURCE_MAX[r], description: `bits; max ${RESOURCE_MAX[r]}` })])),
  { description: 'bitmask per resource: Create 1, Read 2, Update 4, Delete 8, eXecute 16' },
);

/** Request form: partial, values validated against each resource's bits by the service (invalid-param). */
export const PermissionsInput = Type.Partial(
  Type.Object(Object.fromEntries(RESOURCES.map((r) => [r, Type.Integer({ minimum: 0, maximum: RESOURCE_MAX[r] })]))),
  { additionalProperties: false },
);

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

export const ListMeta = {
  total: Type.Integer({ description: 'items matching the filters' }),
  offset: Type.Integer(),
  limit: Type.Integer(),
};

/** Security requirement objects for the OpenAPI document. */
type SecurityRequirement = Array<Record<string, string[]>>;
export const Security: Record<'admin' | 'session' | 'user' | 'none', SecurityRequirement> = {
  admin: [{ adminToken: [] }],
  session: [{ sessionToken: [] }],
  user: [{ authToken: [] }, { bearer: [] }, { apiKeyOrg: [], apiKeyUser: [], apiKey: [] }],
  none: [],
};
