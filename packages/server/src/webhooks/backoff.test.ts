import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF, retryDelayMs, type BackoffPolicy } from './backoff.js';

/** Delays after each failure until the policy gives up, with a fixed random value. */
function schedule(policy: BackoffPolicy, r: number): number[] {
  const out: number[] = [];
  for (let n = 1; ; n++) {
    const d = retryDelayMs(n, policy, () => r);
    if (d === null) return out;
    out.push(d);
  }
}

describe('retry backoff', () => {
  it('allows at least 8 attempts spread over at least an hour, even with the shortest jitter', () => {
    for (const r of [0, 0.5, 0.999999]) {
      const delays = schedule(DEFAULT_BACKOFF, r);
      expect(delays.length + 1).toBeGreaterThanOrEqual(8);
      expect(delays.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3_600_000);
    }
  });

  it('grows exponentially without jitter and is capped', () => {
    const noJitter = { ...DEFAULT_BACKOFF, jitter: 0 };
    expect(schedule(noJitter, 0.3)).toEqual([30_000, 60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000]);
  });

  it('jitter stays within ±jitter of the nominal delay, never above the cap, and varies with the random value', () => {
    const nominal = schedule({ ...DEFAULT_BACKOFF, jitter: 0 }, 0);
    for (const r of [0, 0.25, 0.5, 0.75, 0.999]) {
      schedule(DEFAULT_BACKOFF, r).forEach((d, i) => {
        expect(d).toBeGreaterThanOrEqual(Math.floor(nominal[i] * 0.8));
        expect(d).toBeLessThanOrEqual(Math.min(DEFAULT_BACKOFF.maxDelayMs, Math.ceil(nominal[i] * 1.2)));
      });
    }
    expect(retryDelayMs(3, DEFAULT_BACKOFF, () => 0)).not.toBe(retryDelayMs(3, DEFAULT_BACKOFF, () => 0.9));
  });

  it('is non-decreasing for a fixed random value and stops at maxAttempts', () => {
    const d = schedule(DEFAULT_BACKOFF, 0.5);
    expect(d).toEqual([...d].sort((a, b) => a - b));
    expect(retryDelayMs(DEFAULT_BACKOFF.maxAttempts, DEFAULT_BACKOFF)).toBeNull();
    expect(retryDelayMs(DEFAULT_BACKOFF.maxAttempts - 1, DEFAULT_BACKOFF)).not.toBeNull();
    expect(() => retryDelayMs(0)).toThrow(RangeError);
  });
});
