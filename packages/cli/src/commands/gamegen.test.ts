import { describe, expect, it } from 'vitest';
import { parseSize } from './gamegen.js';

describe('parseSize', () => {
  it('reads decimal and binary units', () => {
    expect(parseSize('300MB')).toBe(300_000_000);
    expect(parseSize('1GB')).toBe(1_000_000_000);
    expect(parseSize('4GiB')).toBe(4 * 1024 ** 3);
    expect(parseSize('512k')).toBe(512 * 1024);
    expect(parseSize('1.5 MiB')).toBe(1.5 * 1024 ** 2);
    expect(parseSize('12345')).toBe(12345);
  });

  it('refuses anything else', () => {
    for (const bad of ['', 'MB', '12XB', '-1GB', '0', '1e3', '9999999999TB']) expect(() => parseSize(bad)).toThrow();
  });
});
