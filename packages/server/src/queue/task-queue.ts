import type { Kysely, Transaction } from 'kysely';
import type { DbCapabilities } from '../db/capabilities.js';
import type { Database, TaskRow } from '../db/database.js';
import type { Clock } from '../domain/clock.js';
import { retryPolicyOf, type RetryPolicies, type RetryPolicy } from './retry-policy.js';
import { enqueueTask, newTaskName, type EnqueueInput } from './tasks.queue.js';

type Db = Kysely<Database>;

export interface TaskQueueOptions {
  db: Db;
  capabilities: DbCapabilities;
  clock: Clock;
  /** Task types with a retry policy of their own (the rest: DEFAULT_RETRY_POLICY). */
  retryPolicies?: RetryPolicies;
  /** Attempts of a task whose type's policy names none (config.worker.maxAttempts). */
  defaultMaxAttempts: number;
}

/** What to enqueue; `maxAttempts` defaults to the type's retry policy, else the installation's default. */
export type TaskInput = Omit<EnqueueInput, 'maxAttempts'> & { maxAttempts?: number };

/**
 * The task queue of one process, as services and task handlers see it: the database, its
 * capabilities, the clock, the retry policy of each task type, and the wake-up of the local worker.
 *
 * Invariant: the worker is woken only AFTER the change that made a task runnable is committed
 * (a worker woken earlier would look, find nothing, and sleep a whole poll interval). Hence:
 * enqueue in a transaction with `transaction(fn)` (it wakes after the commit, never on a rollback),
 * or without one (`enqueue(undefined, …)`: the insert commits on its own, then wakes). Other
 * workers, in other processes, find the task by polling.
 */
export class TaskQueue {
  readonly db: Db;
  readonly capabilities: DbCapabilities;
  readonly clock: Clock;
  readonly retryPolicies: RetryPolicies;
  private readonly defaultMaxAttempts: number;
  private readonly wakers = new Set<() => void>();

  constructor(o: TaskQueueOptions) {
    this.db = o.db;
    this.capabilities = o.capabilities;
    this.clock = o.clock;
    this.retryPolicies = o.retryPolicies ?? {};
    this.defaultMaxAttempts = o.defaultMaxAttempts;
  }

  /** The retry policy of `type`. */
  policyOf(type: string): Readonly<RetryPolicy> {
    return retryPolicyOf(this.retryPolicies, type);
  }

  /**
   * Inserts a submitted task, in `trx` when given (it runs once that transaction commits: use
   * `transaction` so the worker is woken then), else on its own and wakes the worker. Returns its row.
   */
  async enqueue(trx: Db | Transaction<Database> | undefined, input: TaskInput): Promise<TaskRow> {
    const maxAttempts = input.maxAttempts ?? this.policyOf(input.type).maxAttempts ?? this.defaultMaxAttempts;
    const row = await enqueueTask(trx ?? this.db, this.clock.now(), { retryPolicy: this.policyOf(input.type), ...input, maxAttempts });
    if (!trx) this.wake();
    return row;
  }

  /**
   * Enqueues a follow-up task (a step that a handler's success leads to) at most once, however often
   * the handler runs (retries, lease take-over): in `trx`, `claim(name)` first records the new task's
   * name where the handler's own state keeps it — a compare-and-set on the parent row, e.g. the
   * import's `mkraw_task` while it is null — and only when that claim succeeds is the task inserted.
   * That claim is the task's once-key: no second row, no rollback. Returns the new row, or undefined
   * when the follow-up was already claimed (the caller reads the one that was).
   * Wake the worker by running this in `transaction`.
   */
  async enqueueFollowUpOnce(
    trx: Transaction<Database>,
    input: TaskInput,
    claim: (name: string) => Promise<boolean>,
  ): Promise<TaskRow | undefined> {
    const name = newTaskName(this.clock.now());
    if (!(await claim(name))) return undefined;
    return this.enqueue(trx, { ...input, name });
  }

  /**
   * Runs `fn` in one database transaction and, once it has committed, wakes the local worker (a
   * task enqueued, released or retried in it may run now). A rollback (fn threw) wakes nobody and
   * rethrows. Returns fn's result.
   */
  async transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    const out = await this.db.transaction().execute(fn);
    this.wake();
    return out;
  }

  /** Wakes the local worker(s) now: call only after the change that made a task runnable is committed. */
  wake(): void {
    for (const w of this.wakers) {
      try {
        w();
      } catch {
        // A waker only resolves a timer; nothing of it may fail the caller's committed change.
      }
    }
  }

  /** Registers a worker's wake-up; returns its removal. */
  onWake(wake: () => void): () => void {
    this.wakers.add(wake);
    return () => this.wakers.delete(wake);
  }
}
