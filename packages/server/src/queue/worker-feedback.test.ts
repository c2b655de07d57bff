// Issue 13 item 7 on the worker: progress is stored while it moves (not only with the heartbeat), and
// a failure of the user's input is logged once, without a stack trace.
import { Writable } from 'node:stream';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../db/dialect.js';
import { StepError } from '../pipeline/errors.js';
import { useMigratedDb } from '../test-support/migrated-db.js';
import { TEST_DIALECTS } from '../test-support/test-server.js';
import { enqueueTask, findTask } from './tasks.queue.js';
import { TaskQueue } from './task-queue.js';
import { Worker } from './worker.js';

describe.each(TEST_DIALECTS)('worker feedback (%s)', (dialect) => {
  const openDb = useMigratedDb(dialect, 'qf');
  let db: Db;
  beforeAll(() => {
    db = openDb();
  });

  it('stores progress while the task runs, and logs a bad input once without a stack', async () => {
    const lines: any[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const worker = new Worker({
      queue: new TaskQueue({ db: db.db, capabilities: db.capabilities, clock: { now: () => Date.now() }, defaultMaxAttempts: 3 }), log: pino({ level: 'info' }, sink), concurrency: 2, pollMs: 10,
      // Heartbeats every 100 s: any progress seen below was stored by the progress path.
      leaseMs: 300_000,
      random: () => 0.5,
      handlers: {
        long: async ({ progress }) => {
          progress(0.1);
          await new Promise((r) => setTimeout(r, 1100));
          progress(0.42);
          await gate;
          return {};
        },
        badtar: async () => {
          throw new StepError('not-a-tar', 'the upload is not a tar (zip)', { fileReadFailed: { filename: 'build.zip', typeExpected: 'tar', typeDetected: 'zip' } });
        },
      },
    });
    const now = Date.now();
    const long = await enqueueTask(db.db, now, { type: 'long', payload: {}, maxAttempts: 1 });
    const bad = await enqueueTask(db.db, now, { type: 'badtar', payload: {}, maxAttempts: 3 });
    worker.start();
    try {
      let seen = 0;
      for (let i = 0; i < 300 && seen < 0.42; i++) {
        seen = Number((await findTask(db.db, long.name))?.progress ?? 0);
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(seen).toBeCloseTo(0.42);
      for (let i = 0; i < 300 && (await findTask(db.db, bad.name))?.status !== 'failed'; i++) await new Promise((r) => setTimeout(r, 10));
      expect(await findTask(db.db, bad.name)).toMatchObject({ status: 'failed', attempts: 1 });
    } finally {
      release();
      await worker.stop({ drain: true });
    }
    const about = lines.filter((l) => l.taskName === bad.name && l.level >= 40);
    expect(about).toHaveLength(1);
    expect(about[0].msg).toBe('task failed: the upload is not a tar (zip)');
    expect(about[0].error).toMatchObject({ code: 'not-a-tar', fileReadFailed: { typeDetected: 'zip' } });
    expect(JSON.stringify(about[0])).not.toMatch(/stack|\n\s+at /);
  }, 30_000);
});
