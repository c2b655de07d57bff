import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A ULID-like id: 10 Crockford base-32 characters of milliseconds, then 16 random ones.
 * Ids made in a later millisecond sort after earlier ones (lexicographically); within one
 * millisecond the order is random. Used for task names (`t_…`) and API-key ids (`k_…`).
 */
export function sortableId(nowMs: number): string {
  let time = '';
  let t = Math.max(0, Math.floor(nowMs));
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(16);
  let rand = '';
  for (const b of bytes) rand += CROCKFORD[b % 32];
  return time + rand;
}
