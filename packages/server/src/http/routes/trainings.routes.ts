import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { TrainingService } from '../../services/training.service.js';
import { principal } from '../plugins/auth.js';
import { PatchTrainingBody, TrainingSchema } from '@rockit/contract';
import { BODY_ERRORS, ListMeta, ListQuery, Name, Ok, Security, errorResponses, toRawListQuery } from '../schemas/common.js';

/** /be/v1/trainings (spec §10); trace processing itself is triggered through POST /be/v1/trigger. */
export const trainingRoutes: FastifyPluginAsyncTypebox<{ services: { trainings: TrainingService } }> = async (app, { services }) => {
  const tags = ['trainings'];
  const common = { config: { auth: 'user' as const } };

  app.get('/be/v1/trainings', {
    ...common,
    schema: {
      tags, summary: 'The training of every app (trainings.read)', security: Security.user,
      querystring: Type.Object({ ...ListQuery, appName: Type.Optional(Type.String({ maxLength: 50, description: 'partial match' })) }),
      response: { 200: Ok({ ...ListMeta, trainings: Type.Array(Type.Partial(TrainingSchema)) }), ...errorResponses(401, 403) },
    },
  }, async (req) => {
    const page = await services.trainings.list(principal(req), { appName: req.query.appName }, toRawListQuery(req.query));
    return { status: 'success' as const, total: page.total, offset: page.offset, limit: page.limit, trainings: page.items };
  });

  app.get('/be/v1/trainings/:appName', {
    ...common,
    schema: {
      tags, summary: 'The training of one app (trainings.read)', security: Security.user,
      params: Type.Object({ appName: Name() }),
      response: { 200: Ok({ training: TrainingSchema }), ...errorResponses(401, 403) },
    },
  }, async (req) => ({ status: 'success' as const, training: await services.trainings.get(principal(req), req.params.appName) }));

  app.patch('/be/v1/trainings', {
    ...common,
    schema: {
      tags, summary: 'Changes when an app\'s traces are processed (trainings.update)', security: Security.user,
      body: PatchTrainingBody,
      response: { 200: Ok({ training: TrainingSchema }), ...errorResponses(401, 403, ...BODY_ERRORS) },
    },
  }, async (req) => ({ status: 'success' as const, training: await services.trainings.patch(principal(req), req.body) }));
};
