/**
 * The one exponential backoff of the project (the server's task queue and webhook deliveries, the
 * engine's HTTP image source, the CLI's API client and uploads). Pure: the random source is a
 * parameter so tests can pin it.
 */
export interface BackoffPolicy {
  /** Delay after the first failure, ms. */
  baseMs: number;
  /** Growth per further failure (2 = doubling). */
  factor: number;
  /** Cap of every delay, ms (also after jitter); `Infinity` = uncapped. */
  maxMs: number;
  /**
   * 0..1: relative spread of the random factor. The nominal delay is scaled by a uniform factor in
   * `[1 - jitter, 1 + jitter]` so that many clients failing together do not retry in lockstep.
   */
  jitter: number;
}

/**
 * Milliseconds to wait after `attempt` failed attempts (an integer ≥ 1) before the next one:
 * `min(maxMs, baseMs * factor^(attempt-1))`, scaled by the jitter factor, capped at `maxMs` again,
 * rounded to whole ms. `random` returns values in [0, 1) (default Math.random).
 * Throws RangeError for an `attempt` below 1 or not an integer.
 */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError('attempt must be an integer ≥ 1');
  const nominal = Math.min(policy.maxMs, policy.baseMs * Math.pow(policy.factor, attempt - 1));
  if (policy.jitter === 0) return Math.round(nominal);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(Math.min(policy.maxMs, nominal * (1 - policy.jitter + 2 * policy.jitter * r)));
}
