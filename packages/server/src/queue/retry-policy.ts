import type { BackoffPolicy } from '@rockit/engine';

/**
 * How a task type is retried (pg-boss keeps the same on each job): the backoff between attempts
 * (engine `backoffDelayMs`: exponential from `baseMs`, capped at `maxMs`, with jitter) and, for types
 * with a schedule of their own, the number of attempts. A type without `maxAttempts` gets the
 * installation's `ROCKIT_WORKER_MAX_ATTEMPTS` (config.worker.maxAttempts), chosen at enqueue and kept
 * in the task's `max_attempts`; the backoff is kept in the task's `retry_policy` (backoffOfTask).
 */
export interface RetryPolicy extends BackoffPolicy {
  /** Attempts in all, the first one included; absent = the configured default. */
  maxAttempts?: number;
}

/** Every task type without a policy of its own: 1 s doubling, at most 5 min, ±50 %. */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({ baseMs: 1000, factor: 2, maxMs: 5 * 60_000, jitter: 0.5 });

/**
 * Webhook and Slack deliveries (api.md §11: exponential backoff, at least 8 attempts over an hour).
 * 30 s doubling, capped at 1 h, ±20 %, 10 attempts: about 30 s, 1, 2, 4, 8, 16, 32 min, 1 h, 1 h —
 * the 8th attempt comes after at least 50 min, the last after more than 2 h even with the shortest
 * jitter.
 */
export const WEBHOOK_RETRY_POLICY: Readonly<Required<RetryPolicy>> = Object.freeze({
  baseMs: 30_000,
  factor: 2,
  maxMs: 3_600_000,
  jitter: 0.2,
  maxAttempts: 10,
});

/** The retry policy of each task type that has its own; the rest use DEFAULT_RETRY_POLICY. */
export type RetryPolicies = Readonly<Record<string, Readonly<RetryPolicy>>>;

/** The policy of `type` in `policies`, else the default. */
export const retryPolicyOf = (policies: RetryPolicies, type: string): Readonly<RetryPolicy> => policies[type] ?? DEFAULT_RETRY_POLICY;

/** The backoff part of a policy, as a task keeps it (`tasks.retry_policy`, JSON). */
export const storedBackoff = (p: BackoffPolicy): string => JSON.stringify({ baseMs: p.baseMs, factor: p.factor, maxMs: p.maxMs, jitter: p.jitter });

const finiteAtLeast = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isFinite(v) && v >= min;

/**
 * The backoff a task was enqueued with (its `retry_policy`), else — a task from before migration 0012,
 * or a value that does not parse — its type's policy in `policies`.
 */
export function backoffOfTask(policies: RetryPolicies, task: { type: string; retry_policy: string | null }): Readonly<BackoffPolicy> {
  if (task.retry_policy !== null) {
    try {
      const p = JSON.parse(task.retry_policy) as Partial<BackoffPolicy>;
      if (finiteAtLeast(p.baseMs, 0) && finiteAtLeast(p.factor, 1) && finiteAtLeast(p.maxMs, 0) && finiteAtLeast(p.jitter, 0) && p.jitter <= 1) {
        return { baseMs: p.baseMs, factor: p.factor, maxMs: p.maxMs, jitter: p.jitter };
      }
    } catch {
      // Not JSON: the type's policy.
    }
  }
  return retryPolicyOf(policies, task.type);
}
