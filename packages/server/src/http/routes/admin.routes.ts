import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AdminService } from '../../services/admin.service.js';
import type { OrgService } from '../../services/org.service.js';
import type { TaskService } from '../../services/task.service.js';
import { principal } from '../plugins/auth.js';
import { CreateOrgBody, CreateOrgResponse, OrgSchema, TaskSchema } from '@rockit/contract';
import { BODY_ERRORS, ListMeta, ListQuery, Name, Ok, OkEmpty, Security, errorResponses, toRawListQuery } from '../schemas/common.js';

export const PruneQuery = Type.Object({
  prune: Type.Optional(Type.Boolean({ description: 'also delete every stored and published file of the org' })),
});

/** /adm/v1: the installation operator's API (x-rockit-admin-token). */
export const adminRoutes: FastifyPluginAsyncTypebox<{ services: { admin: AdminService; orgs: OrgService; tasks: TaskService } }> = async (app, { services }) => {
  const common = { config: { auth: 'admin' as const } };
  const tags = ['admin'];

  app.post('/adm/v1/ping', {
    ...common,
    schema: {
      tags, summary: 'Checks the API layer', security: Security.admin,
      response: { 200: Ok({ pong: Type.Literal(true), time: Type.Integer({ description: 'server time (UNIX seconds)' }) }), ...errorResponses(401) },
    },
  }, async (req) => ({ status: 'success' as const, ...services.admin.ping(principal(req)) }));

  app.post('/adm/v1/hello', {
    ...common,
    schema: {
      tags, summary: 'Runs a test task through queue and worker', security: Security.admin,
      description: 'Submits an org-less task of type `hello` echoing `message`; with `maintenance` (default false) it also runs the storage self-checks. Follow it with GET /adm/v1/tasks/{name}.',
      body: Type.Object({ message: Type.String({ maxLength: 1000 }), maintenance: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
      response: { 202: Ok({ task: TaskSchema }, 'accepted'), ...errorResponses(401, ...BODY_ERRORS) },
    },
  }, async (req, reply) => {
    const task = await services.admin.hello(principal(req), req.body);
    return reply.code(202).send({ status: 'success' as const, task });
  });

  app.get('/adm/v1/tasks/:name', {
    ...common,
    schema: {
      tags, summary: 'Any task of the installation (org-less hello tasks included)', security: Security.admin,
      params: Type.Object({ name: Type.String({ maxLength: 100 }) }),
      response: { 200: Ok({ task: TaskSchema }), ...errorResponses(401) },
    },
  }, async (req) => ({ status: 'success' as const, task: await services.tasks.getAsAdmin(principal(req), req.params.name) }));

  app.post('/adm/v1/orgs', {
    ...common,
    schema: {
      tags, summary: 'Creates an organization', security: Security.admin, body: CreateOrgBody,
      response: { 201: CreateOrgResponse, ...errorResponses(401, 409, ...BODY_ERRORS) },
    },
  }, async (req, reply) => {
    const r = await services.orgs.create(principal(req), req.body);
    return reply.code(201).send({ status: 'success' as const, ...r });
  });

  app.get('/adm/v1/orgs', {
    ...common,
    schema: {
      tags, summary: 'Lists organizations', security: Security.admin,
      querystring: Type.Object(ListQuery),
      response: { 200: Ok({ ...ListMeta, orgs: Type.Array(Type.Partial(OrgSchema)) }), ...errorResponses(401) },
    },
  }, async (req) => {
    const page = await services.orgs.list(principal(req), toRawListQuery(req.query));
    return { status: 'success' as const, total: page.total, offset: page.offset, limit: page.limit, orgs: page.items };
  });

  app.get('/adm/v1/orgs/:name', {
    ...common,
    schema: {
      tags, summary: 'One organization', security: Security.admin,
      params: Type.Object({ name: Name() }),
      response: { 200: Ok({ org: OrgSchema }), ...errorResponses(401) },
    },
  }, async (req) => ({ status: 'success' as const, org: await services.orgs.get(principal(req), req.params.name) }));

  app.delete('/adm/v1/orgs/:name', {
    ...common,
    schema: {
      tags, summary: 'Deletes an organization (with prune: also its files)', security: Security.admin,
      params: Type.Object({ name: Name() }), querystring: PruneQuery,
      response: { 200: OkEmpty, ...errorResponses(401) },
    },
  }, async (req) => {
    await services.orgs.delete(principal(req), req.params.name, req.query.prune === true);
    return { status: 'success' as const };
  });
};
