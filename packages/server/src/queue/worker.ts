import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database, TaskRow } from '../db/database.js';
import type { Clock } from '../domain/clock.js';
import { backoffDelayMs } from '@rockit/engine';
import type { TaskQueue } from './task-queue.js';
import { backoffOfTask } from './retry-policy.js';
import { claimTask, completeTask, endTask, failTask, heartbeatTask, reclaimExpiredLeases } from './tasks.queue.js';

/** What a handler gets for one attempt of one task. */
export interface TaskContext {
  task: TaskRow;
  payload: unknown;
  /** Aborted when the worker stops without draining or loses the lease. */
  signal: AbortSignal;
  log: Logger;
  /** Reports progress in [0, 1] (stored with the next heartbeat). */
  progress(fraction: number): void;
}

/** A handler may run more than once for one task (retries, lease takeover): it must be idempotent. */
export type TaskHandler = (ctx: TaskContext) => Promise<unknown>;

/** Thrown by a handler to fail the task without retrying (the input can never succeed). */
export class PermanentTaskError extends Error {
  constructor(message: string, readonly detail: Record<string, unknown> = {}) {
    super(message);
    this.name = 'PermanentTaskError';
  }
}

/**
 * Thrown by a handler to fail this attempt and be retried after `retryAfterMs` (its own schedule
 * instead of the worker's backoff). The task still fails for good once `max_attempts` is reached.
 */
export class RetryTaskError extends Error {
  constructor(message: string, readonly retryAfterMs: number, readonly detail: Record<string, unknown> = {}) {
    super(message);
    this.name = 'RetryTaskError';
  }
}

/**
 * An error that knows its task `error` JSON and whether another attempt may succeed (the
 * pipeline's StepError is one). The worker stores `toTaskError()` and retries only when `retryable`.
 */
export interface TaskFailure {
  readonly retryable: boolean;
  toTaskError(): object;
}

const isTaskFailure = (err: unknown): err is Error & TaskFailure =>
  err instanceof Error && typeof (err as Partial<TaskFailure>).toTaskError === 'function' && typeof (err as Partial<TaskFailure>).retryable === 'boolean';

/** Least time between two progress writes of one task (besides the heartbeats). */
const PROGRESS_STORE_MS = 1000;

/** Thrown by a handler to end the task with status `expired` or `canceled` (no retry). */
export class TaskEndedError extends Error {
  constructor(readonly status: 'expired' | 'canceled', message: string, readonly detail: Record<string, unknown> = {}) {
    super(message);
    this.name = 'TaskEndedError';
  }
}

export interface WorkerOptions {
  /** The queue it claims from: database, clock, retry policies; the worker registers its wake-up with it. */
  queue: TaskQueue;
  log: Logger;
  handlers: Readonly<Record<string, TaskHandler>>;
  concurrency: number;
  pollMs: number;
  leaseMs: number;
  /** Random source of the backoff jitter, in [0, 1); injectable for tests. */
  random?: () => number;
  /** Told of every attempt's end (metrics): type, outcome, seconds, the result; `final` when a failure will not be retried. */
  onTaskEnd?: (end: { type: string; outcome: 'succeeded' | 'failed' | 'ended'; seconds: number; result?: unknown; final?: boolean }) => void;
}

/**
 * Claims and runs tasks with up to `concurrency` in flight. While a handler runs the lease is
 * renewed every third of its length. stop({ drain: true }) stops claiming and waits for running
 * handlers; stop({ drain: false }) also aborts them (their tasks are retried after the lease lapses).
 */
export class Worker {
  readonly id = `w-${randomUUID()}`;
  private running = new Set<Promise<void>>();
  private stopping = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly abort = new AbortController();
  private lastBeatMs = 0;

  private readonly db: Kysely<Database>;
  private readonly clock: Clock;
  private readonly unregister: () => void;

  constructor(private readonly o: WorkerOptions) {
    this.db = o.queue.db;
    this.clock = o.queue.clock;
    this.unregister = o.queue.onWake(() => this.poke());
  }

  /** True while the loop is alive (for /srv/v1/health). */
  get alive(): boolean {
    return this.loop !== undefined && !this.stopping;
  }

  /** Milliseconds-epoch of the loop's last iteration. */
  get lastBeat(): number {
    return this.lastBeatMs;
  }

  start(): void {
    if (this.loop) return;
    this.loop = this.run();
  }

  /** Wakes the loop now (the queue calls it after a commit that made a task runnable). */
  poke(): void {
    this.wake?.();
  }

  async stop(opts: { drain: boolean }): Promise<void> {
    this.stopping = true;
    this.unregister();
    if (!opts.drain) this.abort.abort();
    this.wake?.();
    await this.loop;
    await Promise.allSettled([...this.running]);
  }

  private async run(): Promise<void> {
    const types = Object.keys(this.o.handlers);
    let lastReclaim = 0;
    while (!this.stopping) {
      this.lastBeatMs = this.clock.now();
      let claimed = false;
      try {
        const now = this.clock.now();
        if (now - lastReclaim >= this.o.leaseMs / 2) {
          lastReclaim = now;
          const n = await reclaimExpiredLeases(this.db, now);
          if (n > 0) this.o.log.warn({ count: n }, 'reclaimed tasks with lapsed leases');
        }
        while (!this.stopping && this.running.size < this.o.concurrency) {
          const task = await claimTask(this.db, this.o.queue.capabilities, this.id, types, this.clock.now(), this.o.leaseMs);
          if (!task) break;
          claimed = true;
          const p = this.execute(task).finally(() => {
            this.running.delete(p);
            this.wake?.();
          });
          this.running.add(p);
        }
      } catch (err) {
        this.o.log.error({ err }, 'worker loop error');
      }
      if (this.stopping) break;
      if (!claimed || this.running.size >= this.o.concurrency) await this.sleep(this.o.pollMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }

  /** The wait before the next attempt of `task` after its current one failed: the backoff it was enqueued with. */
  private retryDelayMs(task: TaskRow): number {
    return backoffDelayMs(backoffOfTask(this.o.queue.retryPolicies, task), Math.max(1, task.attempts), this.o.random);
  }

  private async execute(task: TaskRow): Promise<void> {
    const { db, clock } = this;
    const { leaseMs } = this.o;
    const log = this.o.log.child({ taskName: task.name, taskType: task.type, workerId: this.id });
    // Which node held a task is what an operator needs after a crash: say it when the lease is taken.
    log.info({ attempt: task.attempts }, 'task claimed');
    const lost = new AbortController();
    const signal = AbortSignal.any([this.abort.signal, lost.signal]);
    const started = performance.now();
    const ended = (outcome: 'succeeded' | 'failed' | 'ended', result?: unknown, final?: boolean): void => {
      try {
        this.o.onTaskEnd?.({ type: task.type, outcome, seconds: (performance.now() - started) / 1000, result, ...(final !== undefined ? { final } : {}) });
      } catch (err) {
        log.warn({ err }, 'task end observer failed');
      }
    };
    let progress: number | undefined;
    let stored = 0;
    let storedAt = performance.now();
    const beat = setInterval(() => {
      heartbeatTask(db, task.name, this.id, clock.now(), leaseMs, progress)
        .then((held) => {
          if (!held) lost.abort(new Error('lease lost'));
        })
        .catch((err) => log.warn({ err }, 'heartbeat failed'));
    }, Math.max(50, Math.floor(leaseMs / 3)));
    try {
      const handler = this.o.handlers[task.type];
      const result = await handler({
        task,
        payload: JSON.parse(task.payload),
        signal,
        log,
        progress: (f) => {
          progress = Math.min(1, Math.max(0, f));
          // Shown while it moves (issue 13: the bar sat at 0 % for a whole build when progress
          // waited for the next heartbeat): stored at most once a second, on a change of 1 % or more.
          const at = performance.now();
          if (at - storedAt >= PROGRESS_STORE_MS && Math.abs(progress - stored) >= 0.01) {
            storedAt = at;
            stored = progress;
            heartbeatTask(db, task.name, this.id, clock.now(), leaseMs, progress).catch((err) => log.warn({ err }, 'progress update failed'));
          }
        },
      });
      const held = await completeTask(db, task.name, this.id, clock.now(), result);
      if (!held) log.warn('task finished after its lease was lost; result dropped');
      else log.info('task succeeded');
      if (held) ended('succeeded', result);
    } catch (err) {
      if (err instanceof TaskEndedError) {
        const held = await endTask(db, task.name, this.id, clock.now(), err.status, { message: err.message, ...err.detail }).catch((e) => {
          log.error({ err: e }, 'could not record task end');
          return false;
        });
        log.info({ status: err.status, held }, 'task ended');
        ended('ended');
        return;
      }
      if (isTaskFailure(err)) {
        const status = await failTask(db, task, this.id, clock.now(), { ...err.toTaskError() }, this.retryDelayMs(task), err.retryable).catch((e) => {
          log.error({ err: e }, 'could not record task failure');
          return undefined;
        });
        // A failure of the input (a bad tar, a wrong sha256...) is the user's, not ours: one line
        // with the task's error fields, no stack trace.
        if (!err.retryable) log.warn({ error: err.toTaskError(), status }, `task failed: ${err.message}`);
        else log.warn({ err, status }, 'task attempt failed');
        ended('failed', undefined, status === 'failed');
        return;
      }
      const permanent = err instanceof PermanentTaskError;
      const later = err instanceof RetryTaskError ? err : undefined;
      const detail =
        err instanceof PermanentTaskError || err instanceof RetryTaskError
          ? { message: err.message, ...err.detail }
          : { message: err instanceof Error ? err.message : String(err) };
      const status = await failTask(db, task, this.id, clock.now(), detail, later?.retryAfterMs ?? this.retryDelayMs(task), !permanent).catch((e) => {
        log.error({ err: e }, 'could not record task failure');
        return undefined;
      });
      log.warn({ err, status }, 'task attempt failed');
      ended('failed', undefined, status === 'failed');
    } finally {
      clearInterval(beat);
    }
  }
}
