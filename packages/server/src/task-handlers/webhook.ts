import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { findSubscriptionById, insertDelivery, pruneDeliveries } from '../db/repositories/subscription.repository.js';
import type { Clock } from '../domain/clock.js';
import { sortableId } from '../domain/ids.js';
import type { SecretBox } from '../domain/secret-box.js';
import type { AddressPolicy, HostLookup } from '../net/address-policy.js';
import { deliver } from '../webhooks/deliver.js';
import type { WebhookTaskPayload } from '../webhooks/emit.js';
import { eventName } from '../webhooks/event.js';
import { SIGNATURE_HEADER, signDelivery } from '../webhooks/sign.js';
import { toSlackMessage } from '../webhooks/slack.js';
import { subscriptionSecretContext } from '../webhooks/subscription-secrets.js';
import { backoffDelayMs } from '@rockit/engine';
import { WEBHOOK_RETRY_POLICY, type RetryPolicy } from '../queue/retry-policy.js';
import { PermanentTaskError, RetryTaskError, type TaskHandler } from '../queue/worker.js';

/** The `iss` claim of every delivery token unless configured otherwise. */
export const DEFAULT_WEBHOOK_ISSUER = 'rockit-edge';
/** Whole-attempt limit of one delivery (connect, send, status line). */
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
/** Delivery attempts kept per subscription (older ones are pruned). */
export const DELIVERIES_KEPT = 100;
/** Header naming the delivery (the webhook task): the same on every retry, so receivers can drop duplicates. */
export const DELIVERY_ID_HEADER = 'x-rockit-delivery';

export interface WebhookHandlerOptions {
  db: Kysely<Database>;
  clock: Clock;
  /** Opens subscriptions' URLs and secrets (installation key). */
  secrets: SecretBox;
  issuer?: string;
  timeoutMs?: number;
  /** The delivery schedule; default WEBHOOK_RETRY_POLICY. */
  backoff?: Readonly<Required<RetryPolicy>>;
  /** Random source of the backoff jitter; injectable for tests. */
  random?: () => number;
  /** SSRF guard: the addresses a target may resolve to (server.ts: `isPublicAddress` unless private URLs are allowed); absent = any. */
  addressPolicy?: AddressPolicy;
  /** Resolves targets' host names; default: the system resolver. Injectable for tests. */
  lookup?: HostLookup;
}

/**
 * The `webhook` task: one delivery of one event to one subscription (api.md §11), one attempt per
 * run. Every attempt is recorded in the subscription's delivery log (time, HTTP status, ok, error,
 * duration). A failed attempt (non-2xx, timeout, connection error) is retried on the `backoff`
 * schedule through RetryTaskError; when the schedule is exhausted the task fails for good.
 *
 * Webhook targets get the event as the JSON body; Slack targets get `toSlackMessage(event)`. Both
 * carry the `x-rockit-subscriptions` JWT (HS256 with the subscription's secret, `sha256` of the
 * exact body) and `x-rockit-delivery` (the task name, stable across retries).
 *
 * At least once: a worker that dies after the receiver answered but before the task was marked
 * done repeats the delivery. A subscription deleted meanwhile ends the task without a delivery.
 * A sealed value that does not open (installation key changed) fails the task at once.
 *
 * With an `addressPolicy`, a target that resolves to a refused address is a failed attempt logged as
 * "target resolves to a private address" and retried like any other (its DNS may change); nothing
 * is sent to it.
 */
export function webhookHandler(o: WebhookHandlerOptions): TaskHandler {
  const policy = o.backoff ?? WEBHOOK_RETRY_POLICY;
  const issuer = o.issuer ?? DEFAULT_WEBHOOK_ISSUER;
  const timeoutMs = o.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  return async ({ task, payload, signal, log }) => {
    const p = payload as WebhookTaskPayload;
    const sub = await findSubscriptionById(o.db, p.subscriptionId);
    if (!sub) return { delivered: false, reason: 'the subscription was deleted' };
    const started = o.clock.now();
    const record = async (r: { ok: boolean; httpStatus?: number; error?: string; ms: number }) => {
      await insertDelivery(o.db, {
        id: 'd_' + sortableId(started),
        subscription_id: sub.id,
        task_name: task.name,
        event: eventName(p.event),
        app_name: p.event.appName ?? null,
        attempt: task.attempts,
        ok: r.ok ? 1 : 0,
        http_status: r.httpStatus ?? null,
        error: r.error ?? null,
        ms: r.ms,
        created_ms: started,
      });
      await pruneDeliveries(o.db, sub.id, DELIVERIES_KEPT);
    };

    let url: string;
    let secret: string;
    try {
      url = o.secrets.decrypt(sub.url_sealed, subscriptionSecretContext(sub.id, 'url'));
      secret = o.secrets.decrypt(sub.secret_sealed, subscriptionSecretContext(sub.id, 'secret'));
    } catch {
      const error = 'the stored subscription secrets do not open with the installation key';
      await record({ ok: false, error, ms: 0 });
      throw new PermanentTaskError(error);
    }

    const body = JSON.stringify(sub.type === 'slack' ? toSlackMessage(p.event) : p.event);
    const token = await signDelivery({ secret, issuer, subscriptionName: sub.name, body, nowSeconds: Math.floor(started / 1000) });
    const result = await deliver({
      url,
      body,
      headers: { [SIGNATURE_HEADER]: token, [DELIVERY_ID_HEADER]: task.name },
      timeoutMs,
      signal,
      ...(o.addressPolicy ? { addressPolicy: o.addressPolicy } : {}),
      ...(o.lookup ? { lookup: o.lookup } : {}),
    });
    await record(result);
    const outcome = { httpStatus: result.httpStatus ?? null, attempts: task.attempts };
    if (result.ok) return { delivered: true, ...outcome };

    const error = result.error ?? 'delivery failed';
    const failed = Math.max(1, task.attempts);
    const delayMs = failed >= policy.maxAttempts ? null : backoffDelayMs(policy, failed, o.random);
    log.warn({ subscription: sub.name, httpStatus: result.httpStatus, errorCode: result.errorCode, attempt: task.attempts, retryInMs: delayMs }, 'webhook delivery failed');
    if (delayMs === null) throw new PermanentTaskError(`delivery failed after ${task.attempts} attempts: ${error}`, outcome);
    throw new RetryTaskError(error, delayMs, outcome);
  };
}
