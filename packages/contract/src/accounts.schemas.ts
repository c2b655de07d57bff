import { Type, type Static } from '@sinclair/typebox';
import { Label, Name, Ok, UnixSeconds } from './common.js';
import { PermissionsInput, PermissionsSchema } from './permissions.js';

/** Organizations (spec §4), roles (§6), users (§5), login and API keys (§2.2). */

export const OrgSchema = Type.Object(
  { name: Name(), label: Type.String(), created: UnixSeconds('created'), updated: UnixSeconds('updated') },
  { title: 'Org' },
);
export type OrgDto = Static<typeof OrgSchema>;

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
export type RoleDto = Static<typeof RoleSchema>;

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
export type UserDto = Static<typeof UserSchema>;

/** A token with its expiry in UNIX seconds on the server's clock. */
export const TokenSchema = Type.Object({ token: Type.String(), expires: UnixSeconds('expiry') });
export type TokenDto = Static<typeof TokenSchema>;

export const UserEmail = Type.String({ pattern: '^[^@\\s]+@[^@\\s]+$', maxLength: 320 });
export const PersonName = Type.String({ minLength: 1, maxLength: 100 });

export const CreateOrgBody = Type.Object(
  {
    name: Name('organization name, unique in the installation'),
    label: Type.Optional(Label),
    adminUsername: Type.Optional(Name('first administrator; default "admin"')),
    adminEmail: Type.Optional(UserEmail),
  },
  { additionalProperties: false },
);
export type CreateOrgInput = Static<typeof CreateOrgBody>;

export const CreateOrgResponse = Ok(
  { org: OrgSchema, admin: Type.Object({ username: Type.String(), password: Type.String({ description: 'initial password, shown once' }) }) },
  'created: the org, its Administrators role and its first administrator',
);
export type CreateOrgAnswer = Static<typeof CreateOrgResponse>;

export const LoginBody = Type.Object(
  { orgName: Type.String({ maxLength: 50 }), username: Type.String({ maxLength: 50 }), password: Type.String({ maxLength: 256 }) },
  { additionalProperties: false },
);
export type LoginInput = Static<typeof LoginBody>;

export const LoginResponse = Ok({ session: TokenSchema, user: UserSchema, permissions: PermissionsSchema });
export type LoginAnswer = Static<typeof LoginResponse>;

export const AuthResponse = Ok({ auth: TokenSchema });
export type AuthAnswer = Static<typeof AuthResponse>;

const Password = Type.String({ minLength: 1, maxLength: 256 });
const Roles = Type.Array(Name('a role name'), { maxItems: 100 });

export const CreateUserBody = Type.Object(
  {
    username: Name(),
    type: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('machine')])),
    email: Type.Optional(UserEmail),
    firstname: Type.Optional(PersonName),
    surname: Type.Optional(PersonName),
    title: Type.Optional(PersonName),
    label: Type.Optional(Label),
    roles: Roles,
  },
  { additionalProperties: false },
);
export type CreateUserInput = Static<typeof CreateUserBody>;

export const CreateUserResponse = Ok(
  {
    user: UserSchema,
    password: Type.Optional(Type.String({ description: 'user accounts: initial password, shown once' })),
    apiKey: Type.Optional(Type.Object({ id: Type.String(), key: Type.String({ description: 'shown once' }) }, { description: 'machine accounts' })),
  },
  'created',
);
export type CreateUserAnswer = Static<typeof CreateUserResponse>;

export const PatchUserBody = Type.Object(
  {
    username: Type.Optional(Name()),
    email: Type.Optional(UserEmail),
    firstname: Type.Optional(PersonName),
    surname: Type.Optional(PersonName),
    title: Type.Optional(Type.Union([PersonName, Type.Null()])),
    label: Type.Optional(Label),
    roles: Type.Optional(Roles),
    disabled: Type.Optional(Type.Boolean()),
    oldPW: Type.Optional(Password),
    newPW: Type.Optional(Password),
    resetCreds: Type.Optional(Password),
  },
  { additionalProperties: false },
);
export type PatchUserInput = Static<typeof PatchUserBody>;

export const CreateApiKeyResponse = Ok(
  { apiKey: Type.Object({ id: Type.String(), key: Type.String({ description: 'shown once' }), created: UnixSeconds('created') }) },
  'created',
);
export type CreateApiKeyAnswer = Static<typeof CreateApiKeyResponse>;

export const CreateRoleBody = Type.Object({ name: Name(), label: Type.Optional(Label), permissions: PermissionsInput }, { additionalProperties: false });
export type CreateRoleInput = Static<typeof CreateRoleBody>;

export const PatchRoleBody = Type.Object({ name: Name(), label: Type.Optional(Label), permissions: Type.Optional(PermissionsInput) }, { additionalProperties: false });
export type PatchRoleInput = Static<typeof PatchRoleBody>;
