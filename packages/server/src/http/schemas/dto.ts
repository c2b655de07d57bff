import { Type } from '@sinclair/typebox';
import { Label, Name, PermissionsSchema, UnixSeconds } from './common.js';

export const OrgSchema = Type.Object(
  { name: Name(), label: Type.String(), created: UnixSeconds('created'), updated: UnixSeconds('updated') },
  { title: 'Org' },
);

export const RoleSchema = Type.Object(
  {
    name: Name(),
    label: Type.String(),
    permissions: PermissionsSchema,
    users: Type.Integer({ description: 'users holding the role' }),
    created: UnixSeconds('created'),
    updated: UnixSeconds('updated'),
  },
  { title: 'Role' },
);

export const UserSchema = Type.Object(
  {
    username: Name(),
    type: Type.Union([Type.Literal('user'), Type.Literal('machine')]),
    email: Type.Optional(Type.String()),
    firstname: Type.Optional(Type.String()),
    surname: Type.Optional(Type.String()),
    title: Type.Optional(Type.String()),
    label: Type.Optional(Type.String()),
    roles: Type.Array(Type.String()),
    disabled: Type.Boolean(),
    created: UnixSeconds('created'),
    updated: UnixSeconds('updated'),
    lastLogin: Type.Optional(UnixSeconds('last successful login')),
  },
  { title: 'User' },
);

export const TaskSchema = Type.Object(
  {
    name: Type.String({ description: 't_ + a time-sortable id' }),
    type: Type.String({ description: 'dltar|mkraw|deploy|trace|hello|cleanup' }),
    status: Type.Union(['submitted', 'running', 'succeeded', 'failed', 'expired', 'canceled'].map((s) => Type.Literal(s))),
    appName: Type.Union([Type.String(), Type.Null()]),
    buildId: Type.Union([Type.Integer(), Type.Null()]),
    progress: Type.Number({ minimum: 0, maximum: 1 }),
    attempts: Type.Integer(),
    warnings: Type.Array(Type.Object({ code: Type.String(), message: Type.String(), acknowledged: Type.Boolean() })),
    error: Type.Unknown({ description: 'null, or { message, ...detail fields }' }),
    result: Type.Unknown({ description: 'null, or the handler result object' }),
    created: UnixSeconds('submitted'),
    started: Type.Union([UnixSeconds('first started'), Type.Null()]),
    ended: Type.Union([UnixSeconds('ended'), Type.Null()]),
  },
  { title: 'Task' },
);

export const TokenSchema = Type.Object({ token: Type.String(), expires: UnixSeconds('expiry') });

export const UserEmail = Type.String({ pattern: '^[^@\\s]+@[^@\\s]+$', maxLength: 320 });
export const PersonName = Type.String({ minLength: 1, maxLength: 100 });
export { Label };
