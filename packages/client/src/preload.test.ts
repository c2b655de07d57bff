import { describe, expect, it } from 'vitest';
import { preloadBytes } from './preload.js';
import { parseRate } from './rate-limiter.js';

describe('preloadBytes', () => {
  const profile = { points: [{ tMs: 0, needBytes: 1000 }, { tMs: 1000, needBytes: 5000 }, { tMs: 10_000, needBytes: 20_000 }] };
  it('is the whole stream without a profile', () => {
    expect(preloadBytes(undefined, 1e6, 12345)).toBe(12345);
  });
  it('is max(need(t) − b·t) plus the default margin, capped at the stream', () => {
    // b = 1000 B/s: max(1000, 4000, 10000) = 10000, +10 %.
    expect(preloadBytes(profile, 1000, 1e9)).toBe(11000);
    expect(preloadBytes(profile, 1e9, 1e9)).toBe(1100);
    expect(preloadBytes(profile, 1, 15_000)).toBe(15_000);
    expect(preloadBytes(profile, 0, 1e9)).toBeGreaterThan(20_000); // nothing measured yet: nearly everything
  });
  it('uses the profile margin table when it has one', () => {
    const withMargins = { ...profile, margins: [{ bytesPerSecond: 1000, marginBytes: 500 }] };
    expect(preloadBytes(withMargins, 1000, 1e9)).toBe(10_500);
  });
});

describe('parseRate', () => {
  it('reads bits and bytes with decimal and binary prefixes', () => {
    expect(parseRate('100Mbit')).toBe(12_500_000);
    expect(parseRate('2MB')).toBe(2_000_000);
    expect(parseRate('1MiB')).toBe(1_048_576);
    expect(parseRate('800k')).toBe(800_000);
    expect(parseRate('4096')).toBe(4096);
  });
  it('refuses nonsense', () => {
    for (const bad of ['', 'fast', '-1MB', '0', '1e999', '10 parsecs']) expect(() => parseRate(bad)).toThrow(RangeError);
  });
});
