import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../db/dialect.js';
import { ManualClock } from '../domain/clock.js';
import { useMigratedDb } from '../test-support/migrated-db.js';
import { TEST_DIALECTS } from '../test-support/test-server.js';
import { WEBHOOK_RETRY_POLICY, backoffOfTask } from './retry-policy.js';
import { TaskQueue } from './task-queue.js';
import { findTask } from './tasks.queue.js';
import { Worker } from './worker.js';

describe.each(TEST_DIALECTS)('TaskQueue (%s)', (dialect) => {
  const openDb = useMigratedDb(dialect, 'tq');
  let db: Db;
  beforeAll(() => {
    db = openDb();
  });
  const clock = new ManualClock();
  const newQueue = () => new TaskQueue({ db: db.db, capabilities: db.capabilities, clock, defaultMaxAttempts: 3, retryPolicies: { webhook: WEBHOOK_RETRY_POLICY } });

  it('wakes after the commit of a transaction, never before it and never on a rollback', async () => {
    const queue = newQueue();
    const seen: Array<string | undefined> = [];
    let pending: string | undefined;
    // At each wake: is the task visible outside the transaction (i.e. committed)?
    queue.onWake(() => seen.push(pending));
    const visible = async (name: string) => (await findTask(db.db, name))?.status;
    const row = await queue.transaction(async (trx) => {
      const r = await queue.enqueue(trx, { type: 't', payload: {} });
      pending = r.name;
      expect(seen).toEqual([]);
      return r;
    });
    expect(seen).toEqual([row.name]);
    expect(await visible(row.name)).toBe('submitted');

    await expect(
      queue.transaction(async (trx) => {
        await queue.enqueue(trx, { type: 't', payload: {} });
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(seen).toHaveLength(1);
  });

  it('enqueue without a transaction commits and wakes; max attempts come from the type policy, else the default', async () => {
    const queue = newQueue();
    let wakes = 0;
    const off = queue.onWake(() => wakes++);
    const plain = await queue.enqueue(undefined, { type: 'hello', payload: {} });
    const hook = await queue.enqueue(undefined, { type: 'webhook', payload: {} });
    const own = await queue.enqueue(undefined, { type: 'hello', payload: {}, maxAttempts: 7 });
    expect(wakes).toBe(3);
    expect([plain.max_attempts, hook.max_attempts, own.max_attempts]).toEqual([3, WEBHOOK_RETRY_POLICY.maxAttempts, 7]);
    expect((await findTask(db.db, plain.name))?.status).toBe('submitted');
    off();
    queue.wake();
    expect(wakes).toBe(3);
  });

  it('keeps the backoff a task was enqueued with: a later change of the type policy does not touch it', async () => {
    const queue = newQueue();
    const hook = await queue.enqueue(undefined, { type: 'webhook', payload: {} });
    const stored = (await findTask(db.db, hook.name))!;
    expect(JSON.parse(stored.retry_policy!)).toEqual({ baseMs: 30_000, factor: 2, maxMs: 3_600_000, jitter: 0.2 });
    const changed = { webhook: { ...WEBHOOK_RETRY_POLICY, baseMs: 1 } };
    expect(backoffOfTask(changed, stored)).toEqual({ baseMs: 30_000, factor: 2, maxMs: 3_600_000, jitter: 0.2 });
    // A task from before migration 0012 (no stored policy) or with a broken value: its type's policy now.
    expect(backoffOfTask(changed, { ...stored, retry_policy: null }).baseMs).toBe(1);
    for (const bad of ['{', '{"baseMs":-1,"factor":2,"maxMs":1,"jitter":0}', '{"baseMs":1,"factor":2,"maxMs":1,"jitter":2}', '[]']) {
      expect(backoffOfTask(changed, { ...stored, retry_policy: bad }).baseMs).toBe(1);
    }
  });

  it('enqueueFollowUpOnce inserts the follow-up only when its claim succeeds, under the claimed name', async () => {
    const queue = newQueue();
    const claimed: string[] = [];
    const first = await queue.transaction((trx) =>
      queue.enqueueFollowUpOnce(trx, { type: 'next', payload: { n: 1 } }, async (name) => {
        claimed.push(name);
        return claimed.length === 1;
      }),
    );
    expect(first?.name).toBe(claimed[0]);
    expect((await findTask(db.db, claimed[0]))?.status).toBe('submitted');
    const second = await queue.transaction((trx) =>
      queue.enqueueFollowUpOnce(trx, { type: 'next', payload: { n: 1 } }, async (name) => {
        claimed.push(name);
        return false;
      }),
    );
    expect(second).toBeUndefined();
    expect(await findTask(db.db, claimed[1])).toBeUndefined();
    const next = await db.db.selectFrom('tasks').select('name').where('type', '=', 'next').execute();
    expect(next.map((r) => r.name)).toEqual([claimed[0]]);
  });

  it('a registered worker starts an enqueued task at once, not at its next poll', async () => {
    const queue = new TaskQueue({ db: db.db, capabilities: db.capabilities, clock: { now: () => Date.now() }, defaultMaxAttempts: 3 });
    let ran!: () => void;
    const done = new Promise<void>((r) => (ran = r));
    const worker = new Worker({
      queue, log: pino({ level: 'silent' }), concurrency: 1, pollMs: 60_000, leaseMs: 30_000,
      handlers: { woken: async () => ran() },
    });
    worker.start();
    await new Promise((r) => setTimeout(r, 50)); // the loop found nothing and sleeps a whole minute
    const started = Date.now();
    await queue.transaction((trx) => queue.enqueue(trx, { type: 'woken', payload: {} }));
    await done;
    expect(Date.now() - started).toBeLessThan(10_000);
    await worker.stop({ drain: true });
  });
});
