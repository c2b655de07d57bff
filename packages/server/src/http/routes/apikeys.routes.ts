import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ApiKeyService } from '../../services/apikey.service.js';
import { principal } from '../plugins/auth.js';
import { CreateApiKeyResponse } from '@rockit/contract';
import { BODY_ERRORS, Name, OkEmpty, Security, errorResponses } from '../schemas/common.js';

/** API keys of machine users (spec §2.2; needs users.update). */
export const apiKeyRoutes: FastifyPluginAsyncTypebox<{ services: { apiKeys: ApiKeyService } }> = async (app, { services }) => {
  const tags = ['auth'];
  const common = { config: { auth: 'user' as const } };

  app.post('/be/v1/apikeys', {
    ...common,
    schema: {
      tags, summary: 'Creates another API key for a machine user (rotation)', security: Security.user,
      body: Type.Object({ username: Name('a machine user') }, { additionalProperties: false }),
      response: {
        201: CreateApiKeyResponse,
        ...errorResponses(401, 403, ...BODY_ERRORS),
      },
    },
  }, async (req, reply) => {
    const apiKey = await services.apiKeys.create(principal(req), req.body);
    return reply.code(201).send({ status: 'success' as const, apiKey });
  });

  app.delete('/be/v1/apikeys/:id', {
    ...common,
    schema: {
      tags, summary: 'Revokes one API key', security: Security.user,
      params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
      response: { 200: OkEmpty, ...errorResponses(401, 403) },
    },
  }, async (req) => {
    await services.apiKeys.revoke(principal(req), req.params.id);
    return { status: 'success' as const };
  });
};
