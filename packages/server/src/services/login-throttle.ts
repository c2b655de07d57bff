import { clearFailures, countFailure, liveFailures } from '../db/repositories/login-throttle.repository.js';
import type { Executor } from '../db/repositories/common.js';
import type { Clock } from '../domain/clock.js';
import { sha256Hex } from '../domain/secrets.js';

/** One throttled dimension: at most `max` failures per key inside a window of `windowSeconds`. */
export interface ThrottleRule {
  /** Keeps the dimensions apart in the shared table (`user`, `address`). */
  kind: string;
  max: number;
  windowSeconds: number;
}

/**
 * Failed-login throttling kept in the database, so every API node of a cluster sees the same counts
 * (decided; README settings `ROCKIT_LOGIN_*`). Once a key has `max` failures inside its window it is
 * blocked until the window ends. Keys are stored hashed.
 */
export class LoginThrottle {
  constructor(
    private readonly db: Executor,
    private readonly clock: Clock,
  ) {}

  /** Seconds until every one of the (rule, value) pairs may try again; 0 when none is blocked. */
  async retryAfterSeconds(checks: Array<[ThrottleRule, string]>): Promise<number> {
    const now = this.clock.now();
    const keyed = checks.map(([rule, value]) => ({ rule, key: keyOf(rule, value) }));
    const live = await liveFailures(this.db, keyed.map((k) => k.key), now);
    let wait = 0;
    for (const row of live) {
      const rule = keyed.find((k) => k.key === row.key)?.rule;
      if (rule && row.failures >= rule.max) wait = Math.max(wait, Math.max(1, Math.ceil((row.windowEndsMs - now) / 1000)));
    }
    return wait;
  }

  async recordFailure(rule: ThrottleRule, value: string): Promise<void> {
    await countFailure(this.db, keyOf(rule, value), this.clock.now(), rule.windowSeconds * 1000);
  }

  async reset(rule: ThrottleRule, value: string): Promise<void> {
    await clearFailures(this.db, keyOf(rule, value));
  }
}

const keyOf = (rule: ThrottleRule, value: string): string => sha256Hex(`${rule.kind}\u0000${value}`);
