/**
 * When to retry a failed delivery (api.md §11: exponential backoff, at least 8 attempts over an
 * hour). Pure: the random source is a parameter so tests can pin it.
 *
 * Delay before attempt n+1, after n failed attempts: `min(maxDelayMs, baseDelayMs * factor^(n-1))`,
 * then scaled by a uniform factor in `[1 - jitter, 1 + jitter]` (and capped again) so that many
 * subscriptions failing together do not retry in lockstep. With the defaults (30 s doubling,
 * capped at 1 h, ±20 %, 10 attempts) the delays are about 30 s, 1, 2, 4, 8, 16, 32 min, 1 h, 1 h:
 * the 8th attempt comes after at least 50 min, the last after more than 2 h even with the
 * shortest jitter.
 */
export interface BackoffPolicy {
  baseDelayMs: number;
  factor: number;
  maxDelayMs: number;
  /** 0..1: relative spread of the random factor. */
  jitter: number;
  /** Attempts in all, the first one included. */
  maxAttempts: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({
  baseDelayMs: 30_000,
  factor: 2,
  maxDelayMs: 3_600_000,
  jitter: 0.2,
  maxAttempts: 10,
});

/**
 * Milliseconds to wait after `failedAttempts` failures (≥ 1) before the next attempt, or null
 * when the policy allows no further attempt. `random` returns values in [0, 1).
 */
export function retryDelayMs(failedAttempts: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number | null {
  if (!Number.isInteger(failedAttempts) || failedAttempts < 1) throw new RangeError('failedAttempts must be an integer ≥ 1');
  if (failedAttempts >= policy.maxAttempts) return null;
  const exponential = policy.baseDelayMs * Math.pow(policy.factor, failedAttempts - 1);
  const capped = Math.min(policy.maxDelayMs, exponential);
  const r = Math.min(Math.max(random(), 0), 1);
  const jittered = capped * (1 - policy.jitter + 2 * policy.jitter * r);
  return Math.round(Math.min(policy.maxDelayMs, jittered));
}
