import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { MAX_N_TRACES_RELIABLE } from '../../services/training.service.js';
import type { AppServices } from '../app.js';
import { principal } from '../plugins/auth.js';
import { BODY_ERRORS, ListMeta, ListQuery, Name, Ok, Security, errorResponses, toRawListQuery } from '../schemas/common.js';

const Bytes = (description: string) => Type.Integer({ minimum: 0, description: `${description} (bytes)` });

export const TrainingSchema = Type.Object(
  {
    appName: Name('the app'),
    nTracesReliable: Type.Integer({ minimum: 1, description: 'new traces that start automatic processing' }),
    auto: Type.Boolean({ description: 'process traces by itself once nTracesReliable new ones arrived' }),
    traces: Type.Integer({ minimum: 0, description: 'traces stored for the app' }),
    tracesSinceLastImage: Type.Integer({ minimum: 0, description: 'traces that arrived since processing last ran' }),
    lastProcessed: Type.Union([Type.Integer(), Type.Null()], { description: 'last processing (UNIX seconds); null before the first' }),
    quality: Type.Union([
      Type.Object({
        coverage: Type.Number({ minimum: 0, maximum: 1, description: 'mean fraction of the traces\' read bytes that fall on the build' }),
        preloadBytes: Type.Object({
          '25Mbit': Bytes('predicted preload at 25 Mbit/s'),
          '100Mbit': Bytes('predicted preload at 100 Mbit/s'),
          '1Gbit': Bytes('predicted preload at 1 Gbit/s'),
        }),
      }),
      Type.Null(),
    ], { description: 'of the published image, from the last processing; null before the first' }),
  },
  { title: 'Training' },
);

/** /be/v1/trainings (spec §10); trace processing itself is triggered through POST /be/v1/trigger. */
export const trainingRoutes: FastifyPluginAsyncTypebox<{ services: AppServices }> = async (app, { services }) => {
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
      body: Type.Object(
        {
          appName: Name(),
          nTracesReliable: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_N_TRACES_RELIABLE })),
          auto: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
      response: { 200: Ok({ training: TrainingSchema }), ...errorResponses(401, 403, ...BODY_ERRORS) },
    },
  }, async (req) => ({ status: 'success' as const, training: await services.trainings.patch(principal(req), req.body) }));
};
