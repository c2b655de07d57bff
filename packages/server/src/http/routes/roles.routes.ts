import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { RoleService } from '../../services/role.service.js';
import { principal } from '../plugins/auth.js';
import { CreateRoleBody, PatchRoleBody, RoleSchema } from '@rockit/contract';
import { BODY_ERRORS, ListMeta, ListQuery, Name, Ok, OkEmpty, Security, errorResponses, toRawListQuery } from '../schemas/common.js';

/** /be/v1/roles (spec §6). */
export const roleRoutes: FastifyPluginAsyncTypebox<{ services: { roles: RoleService } }> = async (app, { services }) => {
  const tags = ['roles'];
  const common = { config: { auth: 'user' as const } };

  app.get('/be/v1/roles', {
    ...common,
    schema: {
      tags, summary: 'Lists roles', security: Security.user,
      querystring: Type.Object({ ...ListQuery, name: Type.Optional(Type.String({ maxLength: 50, description: 'partial match' })) }),
      response: { 200: Ok({ ...ListMeta, roles: Type.Array(Type.Partial(RoleSchema)) }), ...errorResponses(401, 403) },
    },
  }, async (req) => {
    const page = await services.roles.list(principal(req), { name: req.query.name }, toRawListQuery(req.query));
    return { status: 'success' as const, total: page.total, offset: page.offset, limit: page.limit, roles: page.items };
  });

  app.post('/be/v1/roles', {
    ...common,
    schema: {
      tags, summary: 'Creates a role (resources left out read 0)', security: Security.user,
      body: CreateRoleBody,
      response: { 201: Ok({ role: RoleSchema }, 'created'), ...errorResponses(401, 403, 409, ...BODY_ERRORS) },
    },
  }, async (req, reply) => {
    const role = await services.roles.create(principal(req), req.body);
    return reply.code(201).send({ status: 'success' as const, role });
  });

  app.get('/be/v1/roles/:name', {
    ...common,
    schema: {
      tags, summary: 'One role', security: Security.user,
      params: Type.Object({ name: Name() }),
      response: { 200: Ok({ role: RoleSchema }), ...errorResponses(401, 403) },
    },
  }, async (req) => ({ status: 'success' as const, role: await services.roles.get(principal(req), req.params.name) }));

  app.patch('/be/v1/roles', {
    ...common,
    schema: {
      tags, summary: 'Changes a role (resources left out keep their value); Administrators cannot be changed (409 in-use)', security: Security.user,
      body: PatchRoleBody,
      response: { 200: Ok({ role: RoleSchema }), ...errorResponses(401, 403, 409, ...BODY_ERRORS) },
    },
  }, async (req) => ({ status: 'success' as const, role: await services.roles.patch(principal(req), req.body) }));

  app.delete('/be/v1/roles/:name', {
    ...common,
    schema: {
      tags, summary: 'Deletes a role (409 in-use while users hold it; never Administrators)', security: Security.user,
      params: Type.Object({ name: Name() }),
      response: { 200: OkEmpty, ...errorResponses(401, 403, 409) },
    },
  }, async (req) => {
    await services.roles.delete(principal(req), req.params.name);
    return { status: 'success' as const };
  });
};
