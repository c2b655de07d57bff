import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTask } from '../queue/tasks.queue.js';
import { createOrg, loginAdmin, type OrgFixture, type Session } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';
import type { HostLookup } from '../net/address-policy.js';
import type { WEBHOOK_RETRY_POLICY } from '../queue/retry-policy.js';
import { emitEvent } from '../webhooks/emit.js';
import type { WebhookEvent } from '../webhooks/event.js';
import { SIGNATURE_HEADER, verifyDelivery } from '../webhooks/sign.js';
import { DEFAULT_WEBHOOK_ISSUER, DELIVERY_ID_HEADER } from './webhook.js';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** Fast, jitter-free schedule: 1 s, 2 s, 4 s (of the test's manual clock); 4 attempts. */
const FAST: typeof WEBHOOK_RETRY_POLICY = { baseMs: 1000, factor: 2, maxMs: 60_000, jitter: 0, maxAttempts: 4 };
const TIMEOUT_MS = 300;

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe.each(TEST_DIALECTS)('webhook deliveries (%s)', (dialect) => {
  let t: TestServer;
  let org: OrgFixture;
  let admin: Session;
  let receiver: Server;
  let base: string;
  const received: Received[] = [];
  const hanging: ServerResponse[] = [];
  /** Per path: statuses to answer in turn; the last one repeats. 0 = never answer. */
  const script = new Map<string, number[]>();

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        const path = req.url ?? '';
        received.push({ path, headers: req.headers, body });
        const plan = script.get(path) ?? [200];
        const status = plan.length > 1 ? plan.shift()! : plan[0];
        if (status === 0) hanging.push(res);
        else res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    // The receiver is on 127.0.0.1: the SSRF guard is lifted (see the guarded suite below).
    t = await createTestServer({ dialect, env: { ROCKIT_ALLOW_PRIVATE_ADDRESSES: 'true' }, webhooks: { backoff: FAST, timeoutMs: TIMEOUT_MS } });
    org = await createOrg(t);
    admin = await loginAdmin(t, org);
  });
  afterAll(async () => {
    await t?.close();
    for (const res of hanging) res.destroy();
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  });

  const subscribe = async (name: string, type: 'webhook' | 'slack', path: string, events?: string[]): Promise<string> => {
    const r = await t.req('POST', '/be/v1/subscriptions', { headers: admin.headers, body: { name, type, url: `${base}${path}`, ...(events ? { events } : {}) } });
    expect(r.statusCode, r.body).toBe(201);
    return r.json().secret;
  };
  const event = (over: Partial<WebhookEvent>): WebhookEvent => ({
    type: 'deploy', event: 'end', orgName: org.name, appName: 'demo', taskName: 't_pipeline', ...over,
  });
  const emit = (e: WebhookEvent) => t.server.db.db.transaction().execute((trx) => emitEvent(trx, e, t.clock.now()));
  const at = (path: string) => received.filter((r) => r.path === path);
  const deliveries = async (name: string) => (await t.req('GET', `/be/v1/subscriptions/${name}`, { headers: admin.headers })).json().subscription.deliveries;

  it('POSTs the event, signed with the subscription secret over the exact body, and logs the attempt', async () => {
    const secret = await subscribe('signed_hook', 'webhook', '/signed', ['deploy.end', 'dltar.error']);
    const tasks = await emit(event({ buildName: '1.0.2', dxfName: 'b0003-t002', deployment: 'cdn_eu' }));
    expect(tasks).toHaveLength(1);
    await emit(event({ type: 'dltar', event: 'begin' })); // not subscribed
    await emit(event({ type: 'dltar', event: 'error', httpDownloadFailed: { httpStatus: 404 }, error: { message: 'download failed', httpStatus: 404 } }));
    await until(() => at('/signed').length === 2, 'two deliveries');

    const [first, second] = at('/signed');
    expect(JSON.parse(first.body)).toEqual({
      type: 'deploy', event: 'end', orgName: org.name, appName: 'demo', taskName: 't_pipeline', buildName: '1.0.2', dxfName: 'b0003-t002', deployment: 'cdn_eu',
    });
    expect(first.headers['content-type']).toBe('application/json');
    expect(first.headers[DELIVERY_ID_HEADER]).toBe(tasks[0]);
    const token = String(first.headers[SIGNATURE_HEADER]);
    const claims = await verifyDelivery(token, {
      secret, body: first.body, issuer: DEFAULT_WEBHOOK_ISSUER, subscriptionName: 'signed_hook', nowSeconds: Math.floor(t.clock.now() / 1000),
    });
    expect(claims.iat).toBe(Math.floor(t.clock.now() / 1000));
    // Another body, or another secret, does not verify.
    await expect(verifyDelivery(token, { secret, body: second.body, nowSeconds: claims.iat })).rejects.toMatchObject({ code: 'body-mismatch' });
    await expect(verifyDelivery(token, { secret: `${secret}x`, body: first.body, nowSeconds: claims.iat })).rejects.toMatchObject({ code: 'invalid-signature' });
    expect(JSON.parse(second.body)).toMatchObject({ type: 'dltar', event: 'error', httpDownloadFailed: { httpStatus: 404 } });

    await until(async () => (await deliveries('signed_hook')).length === 2, 'two logged attempts');
    const log = await deliveries('signed_hook');
    expect(log[1]).toMatchObject({ delivery: tasks[0], event: 'deploy.end', appName: 'demo', attempt: 1, ok: true, httpStatus: 200, error: null });
    expect(log[0]).toMatchObject({ event: 'dltar.error', ok: true });
    await until(async () => (await findTask(t.server.db.db, tasks[0]))?.status === 'succeeded', 'task done');
  });

  it('retries a failing receiver on the backoff schedule until it answers 2xx', async () => {
    await subscribe('flaky_hook', 'webhook', '/flaky', ['trace.end']);
    script.set('/flaky', [500, 503, 200]);
    const [task] = await emit(event({ type: 'trace', event: 'end' }));
    await until(() => at('/flaky').length === 1, 'first attempt');
    await until(async () => (await findTask(t.server.db.db, task))?.status === 'submitted', 'first retry scheduled');
    const afterFirst = (await findTask(t.server.db.db, task))!;
    expect(afterFirst.run_after_ms).toBe(t.clock.now() + 1000);
    expect(JSON.parse(afterFirst.error!)).toMatchObject({ message: 'receiver answered HTTP 500', httpStatus: 500 });

    t.clock.advance(1000);
    await until(() => at('/flaky').length === 2, 'second attempt');
    await until(async () => (await findTask(t.server.db.db, task))?.status === 'submitted', 'second retry scheduled');
    expect((await findTask(t.server.db.db, task))!.run_after_ms).toBe(t.clock.now() + 2000);

    t.clock.advance(2000);
    await until(async () => (await findTask(t.server.db.db, task))?.status === 'succeeded', 'delivered');
    expect(at('/flaky')).toHaveLength(3);
    expect(new Set(at('/flaky').map((r) => r.headers[DELIVERY_ID_HEADER]))).toEqual(new Set([task]));
    const log = await deliveries('flaky_hook');
    expect(log.map((d: any) => [d.attempt, d.ok, d.httpStatus])).toEqual([[3, true, 200], [2, false, 503], [1, false, 500]]);
    expect(log[2].error).toBe('receiver answered HTTP 500');
  });

  it('gives up after the last attempt of the schedule', async () => {
    await subscribe('dead_hook', 'webhook', '/dead', ['mkraw.error']);
    script.set('/dead', [500]);
    const [task] = await emit(event({ type: 'mkraw', event: 'error' }));
    for (let n = 1; n <= FAST.maxAttempts; n++) {
      await until(() => at('/dead').length === n, `attempt ${n}`);
      await until(async () => ['submitted', 'failed'].includes((await findTask(t.server.db.db, task))!.status), `attempt ${n} recorded`);
      t.clock.advance(FAST.maxMs);
    }
    const final = (await findTask(t.server.db.db, task))!;
    expect(final).toMatchObject({ status: 'failed', attempts: FAST.maxAttempts });
    expect(JSON.parse(final.error!).message).toBe(`delivery failed after ${FAST.maxAttempts} attempts: receiver answered HTTP 500`);
    expect(await deliveries('dead_hook')).toHaveLength(FAST.maxAttempts);
  });

  it('a receiver that never answers times out; the attempt is logged and retried', async () => {
    await subscribe('slow_hook', 'webhook', '/slow', ['mkraw.begin']);
    script.set('/slow', [0, 204]);
    const [task] = await emit(event({ type: 'mkraw', event: 'begin' }));
    await until(async () => (await findTask(t.server.db.db, task))?.status === 'submitted' && (await deliveries('slow_hook')).length === 1, 'timed-out attempt');
    expect((await deliveries('slow_hook'))[0]).toMatchObject({ attempt: 1, ok: false, httpStatus: null, error: `no answer within ${TIMEOUT_MS} ms` });
    t.clock.advance(1000);
    await until(async () => (await findTask(t.server.db.db, task))?.status === 'succeeded', 'second attempt');
    expect((await deliveries('slow_hook'))[0]).toMatchObject({ attempt: 2, ok: true, httpStatus: 204 });
  });

  it('Slack targets get a readable message with the same facts, signed the same way', async () => {
    const secret = await subscribe('chat', 'slack', '/services/T1/B2/XYZ', ['deploy.error']);
    await emit(event({ event: 'error', buildName: '2.0', deployment: 'cdn_eu', error: { message: 'origin unreachable' } }));
    await until(() => at('/services/T1/B2/XYZ').length === 1, 'slack delivery');
    const r = at('/services/T1/B2/XYZ')[0];
    const msg = JSON.parse(r.body);
    expect(msg.text).toBe(`:x: Deploy failed: *${org.name}/demo* build 2.0 to cdn_eu\n*Error:* origin unreachable`);
    expect(JSON.stringify(msg.blocks)).toContain('deploy.error');
    await verifyDelivery(String(r.headers[SIGNATURE_HEADER]), { secret, body: r.body, subscriptionName: 'chat', nowSeconds: Math.floor(t.clock.now() / 1000) });
  });

  it('keeps the order per subscription: a later event waits until the earlier one is delivered', async () => {
    await subscribe('ordered', 'webhook', '/ordered', ['dltar.submit', 'dltar.begin', 'dltar.end']);
    await subscribe('sentinel', 'webhook', '/sentinel', ['trace.submit']);
    script.set('/ordered', [500, 200]);
    const names = ['submit', 'begin', 'end'] as const;
    for (const e of names) await emit(event({ type: 'dltar', event: e }));
    await until(() => at('/ordered').length === 1, 'first attempt of the first event');
    await until(async () => (await deliveries('ordered')).length === 1, 'first attempt logged');
    // An event emitted now to another subscription is delivered while the first event backs off;
    // the queued events of `ordered` are older, so they would have gone first had they not waited.
    await emit(event({ type: 'trace', event: 'submit' }));
    await until(() => at('/sentinel').length === 1, 'the sentinel delivery');
    expect(at('/ordered')).toHaveLength(1);

    t.clock.advance(1000);
    await until(() => at('/ordered').length === 4, 'all deliveries');
    expect(at('/ordered').map((r) => JSON.parse(r.body).event)).toEqual(['submit', 'submit', 'begin', 'end']);
  });

  it('drops queued deliveries of a deleted subscription', async () => {
    await subscribe('gone_hook', 'webhook', '/gone', ['trace.begin']);
    script.set('/gone', [500]);
    const [task] = await emit(event({ type: 'trace', event: 'begin' }));
    await until(async () => (await findTask(t.server.db.db, task))?.status === 'submitted' && at('/gone').length === 1, 'failed first attempt');
    expect((await t.req('DELETE', '/be/v1/subscriptions/gone_hook', { headers: admin.headers })).statusCode).toBe(200);
    t.clock.advance(1000);
    await until(async () => (await findTask(t.server.db.db, task))?.status === 'succeeded', 'task ended');
    expect(JSON.parse((await findTask(t.server.db.db, task))!.result!)).toEqual({ delivered: false, reason: 'the subscription was deleted' });
    expect(at('/gone')).toHaveLength(1);
  });

  it('fails at once, with the attempt logged, when the stored secrets do not open', async () => {
    await subscribe('broken_hook', 'webhook', '/broken', ['trace.error']);
    // A sealed value moved to another field does not open there (it is bound to row and field).
    await sql`update subscriptions set secret_sealed = url_sealed where name = 'broken_hook'`.execute(t.server.db.db);
    const [task] = await emit(event({ type: 'trace', event: 'error' }));
    await until(async () => (await findTask(t.server.db.db, task))?.status === 'failed', 'task failed');
    expect((await findTask(t.server.db.db, task))!.attempts).toBe(1);
    expect((await deliveries('broken_hook'))[0]).toMatchObject({ ok: false, error: 'the stored subscription secrets do not open with the installation key' });
    expect(at('/broken')).toHaveLength(0);
  });

  it('emits nothing for an org without matching subscriptions', async () => {
    const other = await createOrg(t);
    expect(await emit(event({ orgName: other.name }))).toEqual([]);
    expect(await emit(event({ orgName: 'no_such_org' }))).toEqual([]);
  });
});

/** With the SSRF guard on (the default), a target whose name resolves to a private address is never reached. */
describe.each(TEST_DIALECTS)('webhook deliveries, SSRF guard on (%s)', (dialect) => {
  let t: TestServer;
  let admin: Session;
  let org: OrgFixture;
  let receiver: Server;
  let port: number;
  let hits = 0;
  /** `hooks.example` resolves to the local receiver, as a tenant's DNS record could. */
  const lookup: HostLookup = async (host) => {
    if (host === 'hooks.example') return [{ address: '127.0.0.1', family: 4 }];
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  };

  beforeAll(async () => {
    receiver = createServer((_req, res) => {
      hits++;
      res.writeHead(200).end();
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    port = (receiver.address() as AddressInfo).port;
    t = await createTestServer({ dialect, webhooks: { backoff: FAST, timeoutMs: TIMEOUT_MS, lookup } });
    org = await createOrg(t);
    admin = await loginAdmin(t, org);
  });
  afterAll(async () => {
    await t?.close();
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  });

  it('logs a failed attempt with the reason, retries it, and sends nothing', async () => {
    const r = await t.req('POST', '/be/v1/subscriptions', {
      headers: admin.headers, body: { name: 'rebound_hook', type: 'webhook', url: `http://hooks.example:${port}/in`, events: ['deploy.end'] },
    });
    expect(r.statusCode, r.body).toBe(201);
    const [task] = await t.server.db.db.transaction().execute((trx) =>
      emitEvent(trx, { type: 'deploy', event: 'end', orgName: org.name, appName: 'demo', taskName: 't_pipeline' }, t.clock.now()));
    const deliveries = async () => (await t.req('GET', '/be/v1/subscriptions/rebound_hook', { headers: admin.headers })).json().subscription.deliveries;
    await until(async () => (await findTask(t.server.db.db, task))?.status === 'submitted' && (await deliveries()).length === 1, 'first attempt');
    expect((await deliveries())[0]).toMatchObject({ attempt: 1, ok: false, httpStatus: null, error: 'target resolves to a private address' });
    const retry = (await findTask(t.server.db.db, task))!;
    expect(retry.run_after_ms).toBe(t.clock.now() + FAST.baseMs);
    expect(JSON.parse(retry.error!).message).toBe('target resolves to a private address');

    t.clock.advance(FAST.baseMs);
    await until(async () => (await deliveries()).length === 2, 'second attempt');
    expect((await deliveries())[0]).toMatchObject({ attempt: 2, ok: false, error: 'target resolves to a private address' });
    expect(hits).toBe(0);
  });
});
