import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AppService } from '../../services/app.service.js';
import { principal } from '../plugins/auth.js';
import { AppSchema, CleanupSchema, CreateAppBody, PatchAppBody, TaskSchema } from '@rockit/contract';
import { AppName, BODY_ERRORS, ListMeta, ListQuery, Ok, Security, errorResponses, toRawListQuery } from '../schemas/common.js';

/** /be/v1/apps (api.md §7.1; apps.*). */
export const appRoutes: FastifyPluginAsyncTypebox<{ services: { apps: AppService } }> = async (app, { services }) => {
  const tags = ['apps'];
  const common = { config: { auth: 'user' as const } };

  app.get('/be/v1/apps', {
    ...common,
    schema: {
      tags, summary: 'Lists apps', security: Security.user,
      querystring: Type.Object({
        ...ListQuery,
        name: Type.Optional(Type.String({ maxLength: 50, description: 'partial match' })),
        error: Type.Optional(Type.Boolean({ description: 'true: only apps in error state; false: only the others' })),
      }),
      response: { 200: Ok({ ...ListMeta, apps: Type.Array(Type.Partial(AppSchema)) }), ...errorResponses(401, 403) },
    },
  }, async (req) => {
    const page = await services.apps.list(principal(req), { name: req.query.name, error: req.query.error }, toRawListQuery(req.query));
    return { status: 'success' as const, total: page.total, offset: page.offset, limit: page.limit, apps: page.items };
  });

  app.post('/be/v1/apps', {
    ...common,
    schema: {
      tags, summary: 'Creates an app', security: Security.user,
      body: CreateAppBody,
      response: { 201: Ok({ app: AppSchema }, 'created'), ...errorResponses(401, 403, 409, ...BODY_ERRORS) },
    },
  }, async (req, reply) => {
    const created = await services.apps.create(principal(req), req.body);
    return reply.code(201).send({ status: 'success' as const, app: created });
  });

  app.get('/be/v1/apps/:name', {
    ...common,
    schema: {
      tags, summary: 'One app (fields[] projects it)', security: Security.user,
      params: Type.Object({ name: AppName() }),
      querystring: Type.Object({ 'fields[]': ListQuery['fields[]'], fields: ListQuery.fields }),
      response: { 200: Ok({ app: Type.Partial(AppSchema) }), ...errorResponses(401, 403) },
    },
  }, async (req) => {
    const fields = toRawListQuery(req.query).fields;
    return { status: 'success' as const, app: await services.apps.get(principal(req), req.params.name, fields) };
  });

  app.patch('/be/v1/apps', {
    ...common,
    schema: {
      tags,
      summary:
        'Changes an app; `deployments` replaces its list (null or [] = every deployment of the org); `iCurBuild` makes a kept build live ' +
        '(set-live / rollback: a `deploy` task republishes release.json on the depot and every origin; 409 app-locked while processing)',
      security: Security.user,
      body: PatchAppBody,
      response: { 200: Ok({ app: AppSchema, task: Type.Optional(TaskSchema) }), ...errorResponses(401, 403, 409, ...BODY_ERRORS) },
    },
  }, async (req) => {
    const out = await services.apps.patch(principal(req), req.body);
    return { status: 'success' as const, app: out.app, ...(out.task ? { task: out.task } : {}) };
  });

  app.delete('/be/v1/apps/:name', {
    ...common,
    schema: {
      tags,
      summary: 'Deletes an app with its builds, images and patches, in the depot and on every origin (409 app-locked while an import processes it)',
      security: Security.user,
      params: Type.Object({ name: AppName() }),
      response: { 200: Ok({ cleanup: CleanupSchema }), ...errorResponses(401, 403, 409) },
    },
  }, async (req) => {
    const { cleanup } = await services.apps.delete(principal(req), req.params.name);
    return { status: 'success' as const, cleanup };
  });
};
