import { Type, type Static } from '@sinclair/typebox';
import { Name, Nullable, UnixSeconds } from './common.js';

/** Webhook and Slack subscriptions (spec §11). */

export const SubscriptionType = Type.Union([Type.Literal('webhook'), Type.Literal('slack')]);

export const DeliverySchema = Type.Object(
  {
    delivery: Type.String({ description: 'the delivery; its retries share it (header x-rockit-delivery)' }),
    event: Type.String({ description: 'type.event, e.g. deploy.end' }),
    appName: Nullable(Type.String()),
    attempt: Type.Integer({ minimum: 1, description: '1 for the first attempt' }),
    ok: Type.Boolean({ description: 'the receiver answered 2xx' }),
    httpStatus: Nullable(Type.Integer({ description: 'the receiver\'s status; null when it did not answer' })),
    error: Nullable(Type.String({ description: 'why the attempt failed' })),
    ms: Type.Integer({ minimum: 0, description: 'duration (milliseconds)' }),
    created: UnixSeconds('attempt started'),
  },
  { title: 'Delivery' },
);
export type DeliveryDto = Static<typeof DeliverySchema>;

export const SubscriptionSchema = Type.Object(
  {
    name: Name(),
    type: SubscriptionType,
    url: Type.String({ description: 'scheme, host and port of the target only (the full URL may be a credential)' }),
    events: Type.Array(Type.String(), { description: 'event names delivered' }),
    created: UnixSeconds('created'),
    updated: UnixSeconds('updated'),
    deliveries: Type.Optional(Type.Array(DeliverySchema, { description: 'GET of one subscription: the newest attempts, newest first' })),
  },
  { title: 'Subscription' },
);
export type SubscriptionDto = Static<typeof SubscriptionSchema>;
