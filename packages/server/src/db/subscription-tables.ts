import type { Selectable } from 'kysely';

/**
 * Tables of migration 0005 (subscriptions, api.md §11), in the portable representation of
 * `database.ts`: text ids, integer milliseconds, 0/1 booleans, JSON as text.
 */

export type SubscriptionType = 'webhook' | 'slack';

export interface SubscriptionsTable {
  id: string;
  org_id: string;
  name: string;
  type: SubscriptionType;
  /**
   * SecretBox-sealed, context `subscriptionSecretContext(id, 'url')`: a target URL may itself be a
   * credential (Slack webhook URLs are), so only `url_display` ever leaves the server.
   */
  url_sealed: string;
  /** The URL reduced to scheme, host and port (what the API shows). */
  url_display: string;
  /** SecretBox-sealed signing secret, context `subscriptionSecretContext(id, 'secret')`. */
  secret_sealed: string;
  /** JSON array of event names (`dltar.submit`...); null = every event, including ones added later. */
  events: string | null;
  created_ms: number;
  updated_ms: number;
}

/** One delivery attempt (the "recent deliveries" of GET /be/v1/subscriptions/{name}). */
export interface SubscriptionDeliveriesTable {
  id: string;
  subscription_id: string;
  /** The `webhook` task that made the attempt (its retries share it). */
  task_name: string;
  /** `type.event` of the delivered event. */
  event: string;
  app_name: string | null;
  /** 1 for the first attempt of the task. */
  attempt: number;
  ok: number;
  http_status: number | null;
  error: string | null;
  /** Wall time of the attempt, milliseconds. */
  ms: number;
  /** When the attempt started. */
  created_ms: number;
}

export interface SubscriptionTables {
  subscriptions: SubscriptionsTable;
  subscription_deliveries: SubscriptionDeliveriesTable;
}

export type SubscriptionRow = Selectable<SubscriptionsTable>;
export type DeliveryRow = Selectable<SubscriptionDeliveriesTable>;
