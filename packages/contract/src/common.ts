import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { APP_NAME_PATTERN, APP_NAME_RULE, NAME_PATTERN } from './names.js';

/** Building blocks of every schema. Response schemas are the whitelist of what leaves the server. */

/** An app name: NAME_PATTERN plus `-` after the first character (decided, issue 13). */
export const AppName = (description = `an app name: ${APP_NAME_PATTERN} (${APP_NAME_RULE})`) => Type.String({ pattern: APP_NAME_PATTERN, description });
export const Name = (description = 'a name: ^[A-Za-z0-9_]{2,50}$') => Type.String({ pattern: NAME_PATTERN, description });
export const UnixSeconds = (description: string) => Type.Integer({ description: `${description} (UNIX seconds)` });
export const Bytes = (description: string) => Type.Integer({ minimum: 0, description: `${description} (bytes)` });
export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
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
/** Every error body (api.md §1.2); `error` is the stable machine name. */
export type ErrorBody = Static<typeof ErrorResponse>;

export const Ok = <T extends Record<string, TSchema>>(props: T, description = 'success') =>
  Type.Object({ status: Type.Literal('success'), ...props }, { description });

export const OkEmpty = Ok({}, 'done');
/** Every success body: `status: "success"` plus named payload keys (api.md §1.2). */
export type SuccessBody = Static<typeof OkEmpty>;

export const ListMeta = {
  total: Type.Integer({ description: 'items matching the filters' }),
  offset: Type.Integer(),
  limit: Type.Integer(),
};
/** A list answer (api.md §1.3) without its items, which sit under the resource's plural name. */
export type ListBody = Static<ReturnType<typeof Ok<typeof ListMeta>>>;
