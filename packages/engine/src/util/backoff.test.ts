import { describe, expect, it } from 'vitest';
import { backoffDelayMs, type BackoffPolicy } from './backoff.js';

const doubling: BackoffPolicy = { baseMs: 1000, factor: 2, maxMs: 8000, jitter: 0 };

describe('backoffDelayMs', () => {
  it('grows by the factor from the base and is capped', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelayMs(doubling, n))).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect([1, 2, 3].map((n) => backoffDelayMs({ ...doubling, factor: 3, maxMs: Infinity }, n))).toEqual([1000, 3000, 9000]);
  });

  it('spreads by ±jitter around the nominal delay, never above the cap', () => {
    const p = { ...doubling, jitter: 0.5 };
    expect(backoffDelayMs(p, 1, () => 0)).toBe(500);
    expect(backoffDelayMs(p, 1, () => 0.5)).toBe(1000);
    expect(backoffDelayMs(p, 1, () => 0.999)).toBe(1499);
    expect(backoffDelayMs(p, 5, () => 0.999)).toBe(8000);
    expect(backoffDelayMs(p, 5, () => 0)).toBe(4000);
  });

  it('does not call the random source without jitter, and refuses an attempt below 1', () => {
    expect(backoffDelayMs(doubling, 2, () => { throw new Error('called'); })).toBe(2000);
    expect(() => backoffDelayMs(doubling, 0)).toThrow(RangeError);
    expect(() => backoffDelayMs(doubling, 1.5)).toThrow(RangeError);
  });
});
