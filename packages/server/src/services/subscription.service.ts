import { randomUUID } from 'node:crypto';
import type { DeliveryDto, SubscriptionDto } from '@rockit/contract';
import { isUniqueViolation } from '../db/errors.js';
import {
  deleteSubscription,
  findSubscription,
  insertSubscription,
  listSubscriptions,
  recentDeliveries,
} from '../db/repositories/subscription.repository.js';
import type { DeliveryRow, SubscriptionRow, SubscriptionType } from '../db/subscription-tables.js';
import { toUnixSeconds } from '../domain/clock.js';
import { AppError, invalidParam, notFound } from '../domain/errors.js';
import { parseListQuery, project, type Page, type RawListQuery } from '../domain/list.js';
import type { SecretBox } from '../domain/secret-box.js';
import { randomSecret } from '../domain/secrets.js';
import { namesRefusedHost, type AddressPolicy } from '../net/address-policy.js';
import { ALL_EVENT_NAMES } from '../webhooks/event.js';
import { displayUrl, subscriptionSecretContext } from '../webhooks/subscription-secrets.js';
import { requirePermission, type Principal, type ServiceDeps } from './context.js';

export interface CreateSubscriptionInput {
  name: string;
  type: SubscriptionType;
  url: string;
  /** Event names (`dltar.submit`, ...); absent = every event. */
  events?: string[];
}

/** Attempts shown by GET /be/v1/subscriptions/{name}. */
export const RECENT_DELIVERIES = 20;
const MAX_URL_LENGTH = 2000;

const SUBSCRIPTION_LIST = {
  orderable: ['name', 'type', 'created', 'updated'],
  fields: ['name', 'type', 'url', 'events', 'created', 'updated'],
  defaultOrder: [{ field: 'name', desc: false }],
} as const;
const SUBSCRIPTION_COLUMNS: Record<string, string> = { name: 'name', type: 'type', created: 'created_ms', updated: 'updated_ms' };

export function toSubscriptionDto(r: SubscriptionRow): SubscriptionDto {
  return {
    name: r.name,
    type: r.type,
    url: r.url_display,
    events: r.events === null ? [...ALL_EVENT_NAMES] : (JSON.parse(r.events) as string[]),
    created: toUnixSeconds(Number(r.created_ms)),
    updated: toUnixSeconds(Number(r.updated_ms)),
  };
}

export const toDeliveryDto = (r: DeliveryRow): DeliveryDto => ({
  delivery: r.task_name,
  event: r.event,
  appName: r.app_name,
  attempt: Number(r.attempt),
  ok: Number(r.ok) !== 0,
  httpStatus: r.http_status === null ? null : Number(r.http_status),
  error: r.error,
  ms: Number(r.ms),
  created: toUnixSeconds(Number(r.created_ms)),
});

/**
 * Checks a target URL: absolute http(s), no longer than MAX_URL_LENGTH, and (with a policy) not an
 * IP literal the policy refuses nor `localhost`. Names are not resolved here (they may not resolve
 * yet); delivery checks what they resolve to. Throws invalid-param `url`.
 */
function checkUrl(url: string, policy: AddressPolicy | undefined): void {
  if (url.length > MAX_URL_LENGTH) throw invalidParam('url', `must be at most ${MAX_URL_LENGTH} characters`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalidParam('url', 'must be an absolute URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalidParam('url', 'must be an http or https URL');
  if (policy && namesRefusedHost(u, policy)) {
    throw invalidParam('url', 'must not point to a private, loopback or link-local address');
  }
}

/** Distinct, known event names, or invalid-param `events` naming the first unknown one. */
function checkEvents(events: string[]): string[] {
  if (events.length === 0) throw invalidParam('events', 'must list at least one event (leave it out for every event)');
  for (const e of events) {
    if (!ALL_EVENT_NAMES.includes(e)) {
      throw invalidParam('events', `has an unknown event '${e}' (dltar|mkraw|deploy|trace . submit|begin|end|error)`);
    }
  }
  return [...new Set(events)];
}

/**
 * Subscriptions of the caller's org (`subscriptions`, api.md §11). The signing secret is generated
 * here, returned once by `create`, and otherwise only opened by the delivery handler.
 */
export class SubscriptionService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly opts: {
      secrets: SecretBox;
      /** SSRF guard for target URLs (the one deliveries use); absent = any address. */
      addressPolicy?: AddressPolicy;
    },
  ) {}

  async list(auth: Principal, filter: { name?: string; type?: SubscriptionType }, raw: RawListQuery): Promise<Page<SubscriptionDto>> {
    const user = requirePermission(auth, 'subscriptions', 'read');
    const q = parseListQuery(raw, SUBSCRIPTION_LIST);
    const { total, rows } = await listSubscriptions(this.deps.db, user.orgId, filter, {
      offset: q.offset, limit: q.limit, order: q.order.map((o) => ({ column: SUBSCRIPTION_COLUMNS[o.field], desc: o.desc })),
    });
    return { total, offset: q.offset, limit: q.limit, items: rows.map((r) => project(toSubscriptionDto(r), q.fields)) };
  }

  /** With the newest RECENT_DELIVERIES attempts. */
  async get(auth: Principal, name: string): Promise<SubscriptionDto> {
    const user = requirePermission(auth, 'subscriptions', 'read');
    const row = await findSubscription(this.deps.db, user.orgId, name);
    if (!row) throw notFound('subscription', name);
    const deliveries = await recentDeliveries(this.deps.db, row.id, RECENT_DELIVERIES);
    return { ...toSubscriptionDto(row), deliveries: deliveries.map(toDeliveryDto) };
  }

  /**
   * Creates the subscription with a new random signing secret, returned here and never again.
   * Errors: invalid-param `url` (not absolute http(s); with the SSRF guard, a private, loopback or
   * link-local IP literal or `localhost`), invalid-param `events` (empty or an
   * unknown name), already-exists for a taken name.
   */
  async create(auth: Principal, input: CreateSubscriptionInput): Promise<{ subscription: SubscriptionDto; secret: string }> {
    const user = requirePermission(auth, 'subscriptions', 'create');
    checkUrl(input.url, this.opts.addressPolicy);
    const events = input.events === undefined ? null : checkEvents(input.events);
    const id = randomUUID();
    const secret = randomSecret('rkwh_');
    const now = this.deps.clock.now();
    const row: SubscriptionRow = {
      id,
      org_id: user.orgId,
      name: input.name,
      type: input.type,
      url_sealed: this.opts.secrets.encrypt(input.url, subscriptionSecretContext(id, 'url')),
      url_display: displayUrl(input.url),
      secret_sealed: this.opts.secrets.encrypt(secret, subscriptionSecretContext(id, 'secret')),
      events: events === null ? null : JSON.stringify(events),
      created_ms: now,
      updated_ms: now,
    };
    try {
      await insertSubscription(this.deps.db, row);
    } catch (e) {
      if (isUniqueViolation(e)) throw new AppError('already-exists', `subscription '${input.name}' already exists`, { param: 'name' });
      throw e;
    }
    return { subscription: toSubscriptionDto(row), secret };
  }

  /** Deliveries still queued for it are dropped (their tasks end without sending). */
  async delete(auth: Principal, name: string): Promise<void> {
    const user = requirePermission(auth, 'subscriptions', 'delete');
    await this.deps.db.transaction().execute(async (trx) => {
      const row = await findSubscription(trx, user.orgId, name);
      if (!row) throw notFound('subscription', name);
      await deleteSubscription(trx, row.id);
    });
  }
}
