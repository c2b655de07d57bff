import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { UserService } from '../../services/user.service.js';
import { principal } from '../plugins/auth.js';
import { CreateUserBody, CreateUserResponse, PatchUserBody, UserSchema } from '@rockit/contract';
import { BODY_ERRORS, ListMeta, ListQuery, Name, Ok, OkEmpty, Security, errorResponses, toRawListQuery } from '../schemas/common.js';

/** /be/v1/users (spec §5; permission beUsers, named users.*). */
export const userRoutes: FastifyPluginAsyncTypebox<{ services: { users: UserService } }> = async (app, { services }) => {
  const tags = ['users'];
  const common = { config: { auth: 'user' as const } };

  app.post('/be/v1/users', {
    ...common,
    schema: {
      tags, summary: 'Creates a user (answers its initial password) or a machine user (answers its first API key)', security: Security.user,
      description: 'The kind: `type`, else `email` ⇒ user, `label` without `email` ⇒ machine. Users need email, firstname, surname; machines need label.',
      body: CreateUserBody,
      response: {
        201: CreateUserResponse,
        ...errorResponses(401, 403, 409, ...BODY_ERRORS),
      },
    },
  }, async (req, reply) => {
    const r = await services.users.create(principal(req), req.body);
    return reply.code(201).send({ status: 'success' as const, ...r });
  });

  app.get('/be/v1/users', {
    ...common,
    schema: {
      tags, summary: 'Lists the users of the caller\'s organization', security: Security.user,
      querystring: Type.Object({
        ...ListQuery,
        username: Type.Optional(Type.String({ maxLength: 50, description: 'partial match' })),
        type: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('machine')])),
        role: Type.Optional(Type.String({ maxLength: 50, description: 'users holding this role' })),
      }),
      response: { 200: Ok({ ...ListMeta, users: Type.Array(Type.Partial(UserSchema)) }), ...errorResponses(401, 403) },
    },
  }, async (req) => {
    const { username, type, role } = req.query;
    const page = await services.users.list(principal(req), { username, type, role }, toRawListQuery(req.query));
    return { status: 'success' as const, total: page.total, offset: page.offset, limit: page.limit, users: page.items };
  });

  app.get('/be/v1/users/:username', {
    ...common,
    schema: {
      tags, summary: 'One user (users.read, or the caller itself)', security: Security.user,
      params: Type.Object({ username: Name() }),
      response: { 200: Ok({ user: UserSchema }), ...errorResponses(401, 403) },
    },
  }, async (req) => ({ status: 'success' as const, user: await services.users.get(principal(req), req.params.username) }));

  app.patch('/be/v1/users', {
    ...common,
    schema: {
      tags, summary: 'Changes a user (default: the caller)', security: Security.user,
      description:
        'Own password: oldPW + newPW. Another user\'s: resetCreds (needs users.update and every beUsers bit). `roles` needs roles.update. ' +
        '`title: null` removes the title. The last Administrators member cannot lose the role or be disabled (409 in-use).',
      body: PatchUserBody,
      response: { 200: Ok({ user: UserSchema }), ...errorResponses(401, 403, 409, ...BODY_ERRORS) },
    },
  }, async (req) => ({ status: 'success' as const, user: await services.users.patch(principal(req), req.body) }));

  app.delete('/be/v1/users/:username', {
    ...common,
    schema: {
      tags, summary: 'Deletes a user; its sessions and API keys stop working at once', security: Security.user,
      params: Type.Object({ username: Name() }),
      response: { 200: OkEmpty, ...errorResponses(401, 403, 409) },
    },
  }, async (req) => {
    await services.users.delete(principal(req), req.params.username);
    return { status: 'success' as const };
  });
};
