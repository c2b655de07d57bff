import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { DownloadKeyService } from '../../services/download-key.service.js';
import { principal } from '../plugins/auth.js';
import { CreateDownloadKeyBody, CreatedDownloadKeySchema, DownloadKeySchema } from '@rockit/contract';
import { BODY_ERRORS, ListMeta, ListQuery, Name, Ok, OkEmpty, Security, errorResponses, toRawListQuery } from '../schemas/common.js';

const KeyId = Type.String({ pattern: '^dk_[0-9A-Z]{26}$', description: 'dk_…' });

/** /be/v1/keys (api.md §9.2): download access keys of apps, permission resource `keys`. */
export const keyRoutes: FastifyPluginAsyncTypebox<{ services: { keys: DownloadKeyService } }> = async (app, { services }) => {
  const tags = ['keys'];
  const common = { config: { auth: 'user' as const } };

  app.get('/be/v1/keys', {
    ...common,
    schema: {
      tags, summary: 'Lists download keys (of one app with appName)', security: Security.user,
      querystring: Type.Object({ ...ListQuery, appName: Type.Optional(Name('only the keys of this app')) }),
      response: { 200: Ok({ ...ListMeta, keys: Type.Array(Type.Partial(DownloadKeySchema)) }), ...errorResponses(401, 403) },
    },
  }, async (req) => {
    const page = await services.keys.list(principal(req), { appName: req.query.appName }, toRawListQuery(req.query));
    return { status: 'success' as const, total: page.total, offset: page.offset, limit: page.limit, keys: page.items };
  });

  app.post('/be/v1/keys', {
    ...common,
    schema: {
      tags, summary: 'Creates a download key of an app; the secret `key` is returned once', security: Security.user,
      body: CreateDownloadKeyBody,
      response: {
        201: Ok({ key: CreatedDownloadKeySchema }, 'created'),
        ...errorResponses(401, 403, 409, ...BODY_ERRORS),
      },
    },
  }, async (req, reply) => reply.code(201).send({ status: 'success' as const, key: await services.keys.create(principal(req), req.body) }));

  app.get('/be/v1/keys/:id', {
    ...common,
    schema: {
      tags, summary: 'One download key (never its secret)', security: Security.user,
      params: Type.Object({ id: KeyId }),
      response: { 200: Ok({ key: DownloadKeySchema }), ...errorResponses(401, 403) },
    },
  }, async (req) => ({ status: 'success' as const, key: await services.keys.get(principal(req), req.params.id) }));

  app.delete('/be/v1/keys/:id', {
    ...common,
    schema: {
      tags, summary: 'Deletes a download key (tokens already issued stay valid until they expire)', security: Security.user,
      params: Type.Object({ id: KeyId }),
      response: { 200: OkEmpty, ...errorResponses(401, 403) },
    },
  }, async (req) => {
    await services.keys.delete(principal(req), req.params.id);
    return { status: 'success' as const };
  });
};
