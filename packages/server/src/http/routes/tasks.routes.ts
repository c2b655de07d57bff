import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { TaskService } from '../../services/task.service.js';
import { principal } from '../plugins/auth.js';
import { BODY_ERRORS, ListMeta, ListQuery, Ok, Security, errorResponses, toRawListQuery } from '../schemas/common.js';
import { TASK_STATUSES, TaskSchema } from '@rockit/contract';

const Status = Type.Union(TASK_STATUSES.map((s) => Type.Literal(s)));

/** /be/v1/tasks (spec §8; tasks.read). */
export const taskRoutes: FastifyPluginAsyncTypebox<{ services: { tasks: TaskService } }> = async (app, { services }) => {
  const tags = ['tasks'];
  const common = { config: { auth: 'user' as const } };

  app.get('/be/v1/tasks', {
    ...common,
    schema: {
      tags, summary: 'Lists the org\'s tasks (newest first by default)', security: Security.user,
      querystring: Type.Object({
        ...ListQuery,
        appName: Type.Optional(Type.String({ maxLength: 50, description: 'partial match' })),
        type: Type.Optional(Type.String({ maxLength: 20 })),
        status: Type.Optional(Status),
        since: Type.Optional(Type.Integer({ minimum: 0, description: 'created at or after (UNIX seconds)' })),
        until: Type.Optional(Type.Integer({ minimum: 0, description: 'created before (UNIX seconds)' })),
      }),
      response: { 200: Ok({ ...ListMeta, tasks: Type.Array(Type.Partial(TaskSchema)) }), ...errorResponses(401, 403) },
    },
  }, async (req) => {
    const { appName, type, status, since, until } = req.query;
    const page = await services.tasks.list(principal(req), { appName, type, status, since, until }, toRawListQuery(req.query));
    return { status: 'success' as const, total: page.total, offset: page.offset, limit: page.limit, tasks: page.items };
  });

  app.get('/be/v1/tasks/:name', {
    ...common,
    schema: {
      tags, summary: 'One task', security: Security.user,
      params: Type.Object({ name: Type.String({ maxLength: 100 }) }),
      response: { 200: Ok({ task: TaskSchema }), ...errorResponses(401, 403) },
    },
  }, async (req) => ({ status: 'success' as const, task: await services.tasks.get(principal(req), req.params.name) }));

  app.patch('/be/v1/tasks', {
    ...common,
    schema: {
      tags, summary: 'Acknowledges a task\'s warnings, or expires an upload that never completed (tasks.update)', security: Security.user,
      body: Type.Object({
        name: Type.String({ maxLength: 100 }),
        acknowledge: Type.Optional(Type.Literal(true, { description: 'mark every warning acknowledged' })),
        expire: Type.Optional(Type.Literal(true, { description: 'end an upload task waiting for (or broken during) its PUT' })),
      }, { additionalProperties: false }),
      response: { 200: Ok({ task: TaskSchema }), ...errorResponses(401, 403, 409, ...BODY_ERRORS) },
    },
  }, async (req) => ({ status: 'success' as const, task: await services.tasks.patch(principal(req), req.body) }));

  app.post('/be/v1/trigger', {
    ...common,
    schema: {
      tags, summary: 'Re-runs a failed task (retry), or processes an app\'s traces now (traces) (tasks.execute)', security: Security.user,
      body: Type.Object({
        type: Type.Union([Type.Literal('retry'), Type.Literal('traces')]),
        taskName: Type.Optional(Type.String({ maxLength: 100, description: 'retry: the failed task' })),
        appName: Type.Optional(Type.String({ maxLength: 50, description: 'traces: the app' })),
      }, { additionalProperties: false }),
      response: { 202: Ok({ task: TaskSchema }), ...errorResponses(401, 403, 409, ...BODY_ERRORS) },
    },
  }, async (req, reply) => {
    const task = await services.tasks.trigger(principal(req), req.body);
    return reply.code(202).send({ status: 'success' as const, task });
  });
};
