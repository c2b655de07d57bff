import { backoffDelayMs } from '@rockit/engine';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_POLICY, WEBHOOK_RETRY_POLICY, retryPolicyOf } from './retry-policy.js';

/** Delays after each failure until the webhook policy gives up, with a fixed random value. */
function schedule(policy: typeof WEBHOOK_RETRY_POLICY, r: number): number[] {
  const out: number[] = [];
  for (let n = 1; n < policy.maxAttempts; n++) out.push(backoffDelayMs(policy, n, () => r));
  return out;
}

describe('webhook retry policy (api.md §11)', () => {
  it('allows at least 8 attempts spread over at least an hour, even with the shortest jitter', () => {
    for (const r of [0, 0.5, 0.999999]) {
      const delays = schedule(WEBHOOK_RETRY_POLICY, r);
      expect(delays.length + 1).toBeGreaterThanOrEqual(8);
      expect(delays.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3_600_000);
    }
  });

  it('grows exponentially without jitter and is capped', () => {
    const noJitter = { ...WEBHOOK_RETRY_POLICY, jitter: 0 };
    expect(schedule(noJitter, 0.3)).toEqual([30_000, 60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000]);
  });

  it('jitter stays within ±jitter of the nominal delay, never above the cap, and varies with the random value', () => {
    const nominal = schedule({ ...WEBHOOK_RETRY_POLICY, jitter: 0 }, 0);
    for (const r of [0, 0.25, 0.5, 0.75, 0.999]) {
      schedule(WEBHOOK_RETRY_POLICY, r).forEach((d, i) => {
        expect(d).toBeGreaterThanOrEqual(Math.floor(nominal[i] * 0.8));
        expect(d).toBeLessThanOrEqual(Math.min(WEBHOOK_RETRY_POLICY.maxMs, Math.ceil(nominal[i] * 1.2)));
      });
    }
    expect(backoffDelayMs(WEBHOOK_RETRY_POLICY, 3, () => 0)).not.toBe(backoffDelayMs(WEBHOOK_RETRY_POLICY, 3, () => 0.9));
  });

  it('is non-decreasing for a fixed random value', () => {
    const d = schedule(WEBHOOK_RETRY_POLICY, 0.5);
    expect(d).toEqual([...d].sort((a, b) => a - b));
  });
});

describe('retryPolicyOf', () => {
  it('gives a type its own policy, and every other type the default (1 s doubling, at most 5 min)', () => {
    expect(retryPolicyOf({ webhook: WEBHOOK_RETRY_POLICY }, 'webhook')).toBe(WEBHOOK_RETRY_POLICY);
    expect(retryPolicyOf({ webhook: WEBHOOK_RETRY_POLICY }, 'mkraw')).toBe(DEFAULT_RETRY_POLICY);
    expect([1, 2, 3, 9, 10].map((n) => backoffDelayMs(DEFAULT_RETRY_POLICY, n, () => 0.5))).toEqual([1000, 2000, 4000, 256_000, 300_000]);
  });
});
