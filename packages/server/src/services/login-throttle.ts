import { clearFailures, countFailure, liveFailures, uncountFailure } from '../db/repositories/login-throttle.repository.js';
import type { Executor } from '../db/repositories/common.js';
import type { Clock } from '../domain/clock.js';
import { sha256Hex } from '../domain/secrets.js';

/** One throttled dimension: at most `max` attempts per key inside a window of `windowSeconds`. */
export interface ThrottleRule {
  /** Keeps the dimensions apart in the shared table (`user`, `address`, `user-address`, `credential`). */
  kind: string;
  max: number;
  windowSeconds: number;
}

/** A (rule, value) pair: the rule and the thing it throttles (an address, an account, both). */
export type ThrottleCheck = [ThrottleRule, string];

/**
 * Attempt throttling kept in the database, so every API node of a cluster sees the same counts
 * (decided; README settings `ROCKIT_LOGIN_*`, `ROCKIT_AUTH_MAX_FAILURES_PER_ADDRESS`). Once a key has
 * `max` attempts inside its window it is blocked until the window ends. Keys are stored hashed.
 */
export class LoginThrottle {
  constructor(
    private readonly db: Executor,
    private readonly clock: Clock,
  ) {}

  /**
   * Counts an attempt on each check in order, each atomically, before the attempt is evaluated (no
   * check-then-act around the slow password hash). Stops at the first check over its max and returns
   * the seconds until it may try again; 0 when the attempt may go ahead. Checks after a blocked one are
   * not counted, so an attacker blocked per address does not use up the account's budget.
   */
  async countAttempt(checks: ThrottleCheck[]): Promise<number> {
    const now = this.clock.now();
    for (const [rule, value] of checks) {
      const w = await countFailure(this.db, keyOf(rule, value), now, rule.windowSeconds * 1000);
      if (w.failures > rule.max) return waitSeconds(w.windowEndsMs, now);
    }
    return 0;
  }

  /** Takes back an attempt counted by countAttempt that succeeded. */
  async uncount(rule: ThrottleRule, value: string): Promise<void> {
    await uncountFailure(this.db, keyOf(rule, value));
  }

  /** Seconds until every one of the checks may try again (read only); 0 when none is blocked. */
  async retryAfterSeconds(checks: ThrottleCheck[]): Promise<number> {
    const now = this.clock.now();
    const keyed = checks.map(([rule, value]) => ({ rule, key: keyOf(rule, value) }));
    const live = await liveFailures(this.db, keyed.map((k) => k.key), now);
    let wait = 0;
    for (const row of live) {
      const rule = keyed.find((k) => k.key === row.key)?.rule;
      if (rule && row.failures >= rule.max) wait = Math.max(wait, waitSeconds(row.windowEndsMs, now));
    }
    return wait;
  }

  /** Counts one failure; returns the seconds to wait when this failure went over the max, else 0. */
  async recordFailure(rule: ThrottleRule, value: string): Promise<number> {
    const now = this.clock.now();
    const w = await countFailure(this.db, keyOf(rule, value), now, rule.windowSeconds * 1000);
    return w.failures > rule.max ? waitSeconds(w.windowEndsMs, now) : 0;
  }

  async reset(rule: ThrottleRule, value: string): Promise<void> {
    await clearFailures(this.db, keyOf(rule, value));
  }
}

export const waitSeconds = (windowEndsMs: number, nowMs: number): number => Math.max(1, Math.ceil((windowEndsMs - nowMs) / 1000));

/** The stored (hashed) key of a rule and value. */
export const keyOf = (rule: ThrottleRule, value: string): string => sha256Hex(`${rule.kind}\u0000${value}`);
