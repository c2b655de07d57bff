import { describe, expect, it } from 'vitest';
import { sortableId } from './ids.js';

describe('sortableId', () => {
  it('is 26 Crockford characters and sorts in creation order, within one millisecond too', () => {
    const ids = [sortableId(1000), sortableId(1000), sortableId(1000), sortableId(999), sortableId(5000)];
    for (const id of ids) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
