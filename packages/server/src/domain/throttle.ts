import type { Clock } from './clock.js';

/**
 * Counts failures per key in fixed windows. Once a key has `max` failures inside its window,
 * it is blocked until the window ends. In memory, per process (decided: login throttling is a
 * brake on guessing, not an accounting system; a cluster multiplies the budget by its node count).
 */
export class FailureThrottle {
  private readonly entries = new Map<string, { count: number; windowEndsMs: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly max: number,
    private readonly windowSeconds: number,
    /** Bound on tracked keys; expired entries are swept when it is reached. */
    private readonly maxKeys = 100_000,
  ) {}

  /** Seconds until `key` may try again, or 0 when it is not blocked. */
  retryAfterSeconds(key: string): number {
    const e = this.entries.get(key);
    const now = this.clock.now();
    if (!e || e.windowEndsMs <= now) return 0;
    return e.count >= this.max ? Math.max(1, Math.ceil((e.windowEndsMs - now) / 1000)) : 0;
  }

  recordFailure(key: string): void {
    const now = this.clock.now();
    const e = this.entries.get(key);
    if (!e || e.windowEndsMs <= now) {
      if (this.entries.size >= this.maxKeys) this.sweep(now);
      this.entries.set(key, { count: 1, windowEndsMs: now + this.windowSeconds * 1000 });
    } else {
      e.count++;
    }
  }

  reset(key: string): void {
    this.entries.delete(key);
  }

  private sweep(now: number): void {
    for (const [k, e] of this.entries) if (e.windowEndsMs <= now) this.entries.delete(k);
    // Still full of live entries: drop the oldest insertions rather than grow without bound.
    for (const k of this.entries.keys()) {
      if (this.entries.size < this.maxKeys) break;
      this.entries.delete(k);
    }
  }
}
