import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * Secrets rules (spec/api.md §2.1): passwords are stored with salted scrypt; API keys and tokens
 * are random (32 bytes) and stored as SHA-256, which is enough for high-entropy values and lets
 * the database look them up by hash. Comparisons of secrets are constant-time.
 */

/** A random opaque secret: `prefix` + 32 random bytes in base64url. */
export const randomSecret = (prefix: string, bytes = 32): string => prefix + randomBytes(bytes).toString('base64url');

/** A generated initial password: 18 random bytes, 24 base64url characters. */
export const randomPassword = (): string => randomBytes(18).toString('base64url');

/** Hex SHA-256 of a secret; the stored form of tokens and API keys. */
export const sha256Hex = (value: string): string => createHash('sha256').update(value, 'utf8').digest('hex');

/** Constant-time equality of two strings (false, without early exit, when lengths differ). */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

const KEY_BYTES = 64;

function scryptAsync(password: string, salt: Buffer, cost: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem must cover 128 * N * r bytes; leave headroom.
    scrypt(password, salt, KEY_BYTES, { N: cost, r: 8, p: 1, maxmem: 256 * cost * 8 + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/**
 * Hashes a password as `scrypt$N$salt$hash` (base64url parts). `cost` is scrypt's N, a power of
 * two; it is stored in the hash so the cost can be raised later without breaking old hashes.
 */
export async function hashPassword(password: string, cost: number): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, cost);
  return `scrypt$${cost}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** True when `password` matches `stored` (a hashPassword result); false for any malformed hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 4 || parts[0] !== 'scrypt') return false;
  const cost = Number(parts[1]);
  if (!Number.isInteger(cost) || cost < 2 || (cost & (cost - 1)) !== 0) return false;
  const expected = Buffer.from(parts[3], 'base64url');
  const actual = await scryptAsync(password, Buffer.from(parts[2], 'base64url'), cost);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
