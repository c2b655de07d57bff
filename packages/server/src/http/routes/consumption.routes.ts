import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ConsumptionService } from '../../services/consumption.service.js';
import { principal } from '../plugins/auth.js';
import { ConsumptionSchema } from '@rockit/contract';
import { Ok, Security, errorResponses } from '../schemas/common.js';

/** GET /be/v1/consumption (api.md §12; consumption.read). */
export const consumptionRoutes: FastifyPluginAsyncTypebox<{ services: { consumption: ConsumptionService } }> = async (app, { services }) => {
  app.get('/be/v1/consumption', {
    config: { auth: 'user' as const },
    schema: {
      tags: ['consumption'], summary: 'Stored bytes per app and published bytes per deployment', security: Security.user,
      querystring: Type.Object(
        { months: Type.Optional(Type.Integer({ minimum: 1, maximum: 36, description: 'also answer a per-month series of the last N months (1-36)' })) },
        { additionalProperties: false },
      ),
      response: { 200: Ok({ consumption: ConsumptionSchema }), ...errorResponses(400, 401, 403) },
    },
  }, async (req) => ({
    status: 'success' as const,
    consumption: await services.consumption.get(principal(req), req.query.months === undefined ? {} : { months: req.query.months }),
  }));
};
