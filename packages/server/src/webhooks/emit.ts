import type { Executor } from '../db/repositories/common.js';
import { subscriptionsOfOrgName } from '../db/repositories/subscription.repository.js';
import { enqueueTask } from '../queue/tasks.queue.js';
import { WEBHOOK_RETRY_POLICY } from '../queue/retry-policy.js';
import { eventName, type WebhookEvent } from './event.js';

/** Task type of one delivery of one event to one subscription. */
export const WEBHOOK_TASK_TYPE = 'webhook';

/** Payload of a `webhook` task. */
export interface WebhookTaskPayload {
  subscriptionId: string;
  event: WebhookEvent;
}

/** Tasks of one subscription share this queue key, so its deliveries run one at a time, in order. */
export const webhookQueueKey = (subscriptionId: string): string => `webhook:${subscriptionId}`;

/** The body fields of api.md §11, in a fixed order; anything else a caller passed is dropped. */
function normalizeEvent(e: WebhookEvent): WebhookEvent {
  const out: WebhookEvent = { type: e.type, event: e.event, orgName: e.orgName, appName: e.appName, taskName: e.taskName };
  if (e.buildName !== undefined) out.buildName = e.buildName;
  if (e.dxfName !== undefined) out.dxfName = e.dxfName;
  if (e.exception !== undefined) out.exception = e.exception;
  if (e.httpDownloadFailed !== undefined) out.httpDownloadFailed = e.httpDownloadFailed;
  if (e.fileReadFailed !== undefined) out.fileReadFailed = e.fileReadFailed;
  if (e.error !== undefined) out.error = e.error;
  if (e.deployment !== undefined) out.deployment = e.deployment;
  return out;
}

/** True when a subscription's stored `events` (JSON array, or null = all) includes the event. */
export function subscribesTo(events: string | null, name: string): boolean {
  if (events === null) return true;
  const list = JSON.parse(events) as unknown;
  return Array.isArray(list) && list.includes(name);
}

/**
 * Announces a pipeline event to the subscriptions of `event.orgName`: enqueues one `webhook` task
 * per subscription whose `events` include `type.event` (all, when it lists none).
 *
 * Call it with the transaction that makes the change the event reports (task state, app state):
 * the deliveries then exist exactly when the change was committed. Deliveries to one subscription
 * are queued under one key, so they are made in the order the events were emitted, each retried
 * (WEBHOOK_RETRY_POLICY, at least 8 attempts over more than an hour) before the next one is tried.
 * Webhook tasks carry no org id: they are internal plumbing, not tasks of api.md §8, and their
 * attempts are shown with the subscription instead.
 *
 * Returns the names of the tasks enqueued (none for an unknown org or no matching subscription).
 */
export async function emitEvent(db: Executor, event: WebhookEvent, nowMs: number): Promise<string[]> {
  const body = normalizeEvent(event);
  const name = eventName(body);
  const names: string[] = [];
  for (const sub of await subscriptionsOfOrgName(db, body.orgName)) {
    if (!subscribesTo(sub.events, name)) continue;
    const payload: WebhookTaskPayload = { subscriptionId: sub.id, event: body };
    const task = await enqueueTask(db, nowMs, {
      type: WEBHOOK_TASK_TYPE,
      payload,
      appName: body.appName,
      queueKey: webhookQueueKey(sub.id),
      maxAttempts: WEBHOOK_RETRY_POLICY.maxAttempts,
      retryPolicy: WEBHOOK_RETRY_POLICY,
    });
    names.push(task.name);
  }
  return names;
}
