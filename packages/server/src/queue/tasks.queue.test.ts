import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../db/dialect.js';
import { ManualClock } from '../domain/clock.js';
import { useMigratedDb } from '../test-support/migrated-db.js';
import { TEST_DIALECTS } from '../test-support/test-server.js';
import { backoffDelayMs } from '@rockit/engine';
import { claimTask, completeTask, enqueueTask, failTask, findTask, heartbeatTask, reclaimExpiredLeases } from './tasks.queue.js';
import { TaskQueue } from './task-queue.js';
import { PermanentTaskError, Worker } from './worker.js';

const LEASE = 10_000;
const policy = { baseMs: 1000, factor: 2, maxMs: 8000, jitter: 0.5 };
const half = () => 0.5;
const backoffMs = (attempt: number) => backoffDelayMs(policy, attempt, half);

describe.each(TEST_DIALECTS)('task queue (%s)', (dialect) => {
  const openDb = useMigratedDb(dialect, 'q');
  let db: Db;
  beforeAll(() => {
    db = openDb();
  });
  const clock = new ManualClock();
  const enqueue = (type: string, extra: Partial<Parameters<typeof enqueueTask>[2]> = {}) =>
    enqueueTask(db.db, clock.now(), { type, payload: { n: 1 }, maxAttempts: 3, ...extra });
  const claim = (owner: string, types = ['t1']) => claimTask(db.db, db.capabilities, owner, types, clock.now(), LEASE);

  it('claims each task once, oldest first, only of the given types and only when due', async () => {
    const a = await enqueue('t1');
    clock.advance(1);
    const b = await enqueue('t1');
    await enqueue('other');
    const later = await enqueue('t1', { runAfterMs: clock.now() + 60_000 });
    const c1 = await claim('w1');
    const c2 = await claim('w2');
    expect(c1?.name).toBe(a.name);
    expect(c2?.name).toBe(b.name);
    expect(c1).toMatchObject({ status: 'running', lease_owner: 'w1', attempts: 1 });
    expect(await claim('w3')).toBeUndefined();
    clock.advance(60_000);
    expect((await claim('w3'))?.name).toBe(later.name);
    for (const [t, o] of [[c1!, 'w1'], [c2!, 'w2']] as const) expect(await completeTask(db.db, t.name, o, clock.now(), { ok: true })).toBe(true);
    await completeTask(db.db, later.name, 'w3', clock.now(), {});
  });

  it('concurrent claims never hand one task to two workers', async () => {
    const names = new Set<string>();
    for (let i = 0; i < 6; i++) names.add((await enqueue('t_conc')).name);
    const claims = await Promise.all(Array.from({ length: 10 }, (_, i) => claim(`cw${i}`, ['t_conc'])));
    const got = claims.filter((c) => c !== undefined).map((c) => c!.name);
    expect(new Set(got).size).toBe(got.length);
    expect(new Set(got)).toEqual(names);
  });

  it('runs tasks of one queue key one at a time, in submission order', async () => {
    const k1 = await enqueue('t_key', { queueKey: 'org/app' });
    clock.advance(1);
    const k2 = await enqueue('t_key', { queueKey: 'org/app' });
    const other = await enqueue('t_key', { queueKey: 'org/other' });
    const first = await claim('w1', ['t_key']);
    const second = await claim('w2', ['t_key']);
    expect(first?.name).toBe(k1.name);
    expect(second?.name).toBe(other.name);
    expect(await claim('w3', ['t_key'])).toBeUndefined();
    await completeTask(db.db, k1.name, 'w1', clock.now(), {});
    expect((await claim('w3', ['t_key']))?.name).toBe(k2.name);
  });

  it('fails with capped exponential backoff, then for good after max attempts', async () => {
    const t = await enqueue('t_fail');
    for (let attempt = 1; attempt <= 3; attempt++) {
      const c = await claim('w', ['t_fail']);
      expect(c?.attempts).toBe(attempt);
      const status = await failTask(db.db, c!, 'w', clock.now(), { message: `boom ${attempt}` }, backoffMs(attempt));
      expect(status).toBe(attempt < 3 ? 'submitted' : 'failed');
      if (attempt < 3) {
        expect(await claim('w', ['t_fail'])).toBeUndefined();
        clock.advance(backoffMs(attempt));
      }
    }
    const row = await findTask(db.db, t.name);
    expect(row).toMatchObject({ status: 'failed', attempts: 3 });
    expect(JSON.parse(row!.error!)).toEqual({ message: 'boom 3' });
    const p = await enqueue('t_fail');
    const cp = await claim('w', ['t_fail']);
    expect(await failTask(db.db, cp!, 'w', clock.now(), { message: 'bad input' }, backoffMs(1), false)).toBe('failed');
    expect((await findTask(db.db, p.name))?.status).toBe('failed');
  });

  it('reclaims lapsed leases; the old owner can neither heartbeat nor complete', async () => {
    const t = await enqueue('t_lease', { maxAttempts: 2 });
    const c = await claim('dead', ['t_lease']);
    clock.advance(LEASE / 2);
    expect(await heartbeatTask(db.db, t.name, 'dead', clock.now(), LEASE, 0.5)).toBe(true);
    clock.advance(LEASE + 1);
    expect(await reclaimExpiredLeases(db.db, clock.now())).toBeGreaterThanOrEqual(1);
    expect(await findTask(db.db, t.name)).toMatchObject({ status: 'submitted', lease_owner: null });
    const again = await claim('alive', ['t_lease']);
    expect(again).toMatchObject({ name: t.name, attempts: 2, lease_owner: 'alive' });
    expect(await heartbeatTask(db.db, t.name, 'dead', clock.now(), LEASE)).toBe(false);
    expect(await completeTask(db.db, c!.name, 'dead', clock.now(), {})).toBe(false);
    clock.advance(LEASE + 1);
    expect(await reclaimExpiredLeases(db.db, clock.now())).toBeGreaterThanOrEqual(1);
    expect((await findTask(db.db, t.name))?.status).toBe('failed');
  });

  it('the worker runs handlers, records results and failures, and drains on stop', async () => {
    const realClock = { now: () => Date.now() };
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = 0;
    const worker = new Worker({
      queue: new TaskQueue({ db: db.db, capabilities: db.capabilities, clock: realClock, defaultMaxAttempts: 3 }),
      log: pino({ level: 'silent' }), concurrency: 2, pollMs: 10, leaseMs: 30_000, random: half,
      handlers: {
        // The queue knows no real handler (task-handlers/ sits above it): an echo and a failing check stand in.
        hello: async ({ payload }) => ({ ...(payload as object), checks: [{ name: 'probe', ok: true }] }),
        slow: async () => {
          started++;
          await gate;
          return { slow: true };
        },
        bad: async () => {
          throw new PermanentTaskError('never works', { code: 'x' });
        },
        broken: async () => {
          throw new PermanentTaskError('self-check failed: store', { checks: [{ name: 'store', ok: false, message: 'unreachable' }] });
        },
      },
    });
    const now = Date.now();
    const hello = await enqueueTask(db.db, now, { type: 'hello', payload: { message: 'hi', maintenance: true }, maxAttempts: 3 });
    const bad = await enqueueTask(db.db, now, { type: 'bad', payload: {}, maxAttempts: 3 });
    const broken = await enqueueTask(db.db, now, { type: 'broken', payload: { message: 'm', maintenance: true }, maxAttempts: 3 });
    const slow = await enqueueTask(db.db, now, { type: 'slow', payload: {}, maxAttempts: 3 });
    worker.start();
    const until = async (cond: () => Promise<boolean>) => {
      for (let i = 0; i < 500 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 10));
    };
    const final = async (name: string) => ['succeeded', 'failed'].includes((await findTask(db.db, name))!.status);
    await until(async () => started === 1 && (await final(hello.name)) && (await final(bad.name)) && (await final(broken.name)));
    const stopping = worker.stop({ drain: true });
    release();
    await stopping;
    expect(JSON.parse((await findTask(db.db, slow.name))!.result!)).toEqual({ slow: true });
    expect(await findTask(db.db, hello.name)).toMatchObject({ status: 'succeeded' });
    expect(JSON.parse((await findTask(db.db, hello.name))!.result!)).toEqual({ message: 'hi', maintenance: true, checks: [{ name: 'probe', ok: true }] });
    const b = (await findTask(db.db, bad.name))!;
    expect(b).toMatchObject({ status: 'failed', attempts: 1 });
    expect(JSON.parse(b.error!)).toEqual({ message: 'never works', code: 'x' });
    const br = (await findTask(db.db, broken.name))!;
    expect(br.status).toBe('failed');
    expect(JSON.parse(br.error!).checks).toEqual([{ name: 'store', ok: false, message: 'unreachable' }]);
  });
});
