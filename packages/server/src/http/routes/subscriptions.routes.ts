import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ALL_EVENT_NAMES } from '../../webhooks/event.js';
import type { SubscriptionService } from '../../services/subscription.service.js';
import { principal } from '../plugins/auth.js';
import { SubscriptionSchema, SubscriptionType } from '@rockit/contract';
import { BODY_ERRORS, ListMeta, ListQuery, Name, Ok, OkEmpty, Security, errorResponses, toRawListQuery } from '../schemas/common.js';

/** /be/v1/subscriptions (spec §11). */
export const subscriptionRoutes: FastifyPluginAsyncTypebox<{ services: { subscriptions: SubscriptionService } }> = async (app, { services }) => {
  const tags = ['subscriptions'];
  const common = { config: { auth: 'user' as const } };

  app.get('/be/v1/subscriptions', {
    ...common,
    schema: {
      tags, summary: 'Lists subscriptions', security: Security.user,
      querystring: Type.Object({
        ...ListQuery,
        name: Type.Optional(Type.String({ maxLength: 50, description: 'partial match' })),
        type: Type.Optional(SubscriptionType),
      }),
      response: { 200: Ok({ ...ListMeta, subscriptions: Type.Array(Type.Partial(SubscriptionSchema)) }), ...errorResponses(401, 403) },
    },
  }, async (req) => {
    const page = await services.subscriptions.list(principal(req), { name: req.query.name, type: req.query.type }, toRawListQuery(req.query));
    return { status: 'success' as const, total: page.total, offset: page.offset, limit: page.limit, subscriptions: page.items };
  });

  app.post('/be/v1/subscriptions', {
    ...common,
    schema: {
      tags, summary: 'Creates a subscription; the signing secret is returned once', security: Security.user,
      body: Type.Object(
        {
          name: Name(),
          type: SubscriptionType,
          url: Type.String({ minLength: 1, maxLength: 2000, description: 'http(s) URL the events are POSTed to' }),
          events: Type.Optional(
            Type.Array(Type.String({ description: ALL_EVENT_NAMES.join(', ') }), {
              minItems: 1, maxItems: ALL_EVENT_NAMES.length * 4, description: 'event names; left out = every event',
            }),
          ),
        },
        { additionalProperties: false },
      ),
      response: {
        201: Ok({ subscription: SubscriptionSchema, secret: Type.String({ description: 'HS256 key of x-rockit-subscriptions; shown once' }) }, 'created'),
        ...errorResponses(401, 403, 409, ...BODY_ERRORS),
      },
    },
  }, async (req, reply) => {
    const { subscription, secret } = await services.subscriptions.create(principal(req), req.body);
    return reply.code(201).send({ status: 'success' as const, subscription, secret });
  });

  app.get('/be/v1/subscriptions/:name', {
    ...common,
    schema: {
      tags, summary: 'One subscription with its recent deliveries', security: Security.user,
      params: Type.Object({ name: Name() }),
      response: { 200: Ok({ subscription: SubscriptionSchema }), ...errorResponses(401, 403) },
    },
  }, async (req) => ({ status: 'success' as const, subscription: await services.subscriptions.get(principal(req), req.params.name) }));

  app.delete('/be/v1/subscriptions/:name', {
    ...common,
    schema: {
      tags, summary: 'Deletes a subscription (deliveries still queued for it are dropped)', security: Security.user,
      params: Type.Object({ name: Name() }),
      response: { 200: OkEmpty, ...errorResponses(401, 403) },
    },
  }, async (req) => {
    await services.subscriptions.delete(principal(req), req.params.name);
    return { status: 'success' as const };
  });
};
