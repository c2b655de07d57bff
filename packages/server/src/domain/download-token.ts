import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/**
 * Download tokens (api.md §9.2, README "Download keys and traces", docs/FORMATS.md "Download
 * tokens"): the Akamai EdgeAuth 2.0 token form, so a CDN can verify them at the edge.
 *
 *   st={unix seconds}~exp={unix seconds}~acl={path glob}[!{path glob}...]~hmac={hex}
 *
 * `hmac` is HMAC-SHA256, keyed with the bytes of the hex key, over everything before `~hmac=`.
 * An ACL entry ending in `*` matches every path starting with the part before it; any other entry
 * matches exactly. Fields are never URL-escaped (EdgeAuth's `escape_early` off).
 */

export interface DownloadTokenFields {
  /** Start (UNIX seconds). */
  st: number;
  /** Expiry (UNIX seconds). */
  exp: number;
  /** ACL entries (joined with `!`). */
  acl: string[];
}

/** The key bytes of a token key: hex digits of even length (EdgeAuth's form) as bytes, anything else as UTF-8. */
export function tokenKeyBytes(key: string): Buffer {
  return /^(?:[0-9a-fA-F]{2})+$/.test(key) ? Buffer.from(key, 'hex') : Buffer.from(key, 'utf8');
}

/**
 * The depot's signing key: HKDF-SHA256 of the installation key, so every node of a cluster (they
 * share the installation key) signs and verifies the same tokens, and the installation key itself
 * never signs anything. Returned as hex (the EdgeAuth key form; give it to a CDN in front of /cdn).
 */
export function depotTokenKey(installationKey: Uint8Array): string {
  return Buffer.from(hkdfSync('sha256', installationKey, Buffer.alloc(0), 'rockit-edge depot download tokens v1', 32)).toString('hex');
}

/** The ACL of an app's files on an origin: its images and its patches (`prefix` '' or e.g. `/cdn`). */
export function appAcl(prefix: string, orgName: string, appName: string): string[] {
  const p = prefix.replace(/\/+$/, '');
  return [`${p}/dxf/${orgName}/${appName}/*`, `${p}/pat/${orgName}/${appName}/*`];
}

export function signDownloadToken(fields: DownloadTokenFields, key: string): string {
  if (fields.acl.some((a) => a.includes('!') || a.includes('~'))) throw new RangeError('an ACL entry may not contain ! or ~');
  const body = `st=${fields.st}~exp=${fields.exp}~acl=${fields.acl.join('!')}`;
  return `${body}~hmac=${hmacHex(body, key)}`;
}

export type TokenCheck = { ok: true; fields: DownloadTokenFields } | { ok: false; reason: 'malformed' | 'signature' | 'expired' | 'not-yet-valid' | 'acl' };

const MAX_TOKEN_LENGTH = 2048;

/**
 * Verifies a token: well-formed, signed with `key` (constant-time compare), `st <= now < exp`, and,
 * when `path` is given, an ACL entry covering it. Never throws.
 */
export function verifyDownloadToken(token: string, key: string, nowSeconds: number, path?: string): TokenCheck {
  if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
  const at = token.lastIndexOf('~hmac=');
  if (at < 0) return { ok: false, reason: 'malformed' };
  const body = token.slice(0, at);
  const mac = token.slice(at + '~hmac='.length);
  if (!/^[0-9a-f]{64}$/.test(mac)) return { ok: false, reason: 'malformed' };
  const fields = new Map<string, string>();
  for (const part of body.split('~')) {
    const eq = part.indexOf('=');
    if (eq <= 0 || fields.has(part.slice(0, eq))) return { ok: false, reason: 'malformed' };
    fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const st = fields.get('st');
  const exp = fields.get('exp');
  const acl = fields.get('acl');
  if (exp === undefined || acl === undefined || !/^\d{1,12}$/.test(exp) || (st !== undefined && !/^\d{1,12}$/.test(st)) || acl === '') {
    return { ok: false, reason: 'malformed' };
  }
  const expected = Buffer.from(hmacHex(body, key), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(mac, 'hex'))) return { ok: false, reason: 'signature' };
  const parsed: DownloadTokenFields = { st: st === undefined ? 0 : Number(st), exp: Number(exp), acl: acl.split('!') };
  if (nowSeconds >= parsed.exp) return { ok: false, reason: 'expired' };
  if (parsed.st > nowSeconds + CLOCK_SKEW_SECONDS) return { ok: false, reason: 'not-yet-valid' };
  if (path !== undefined && !aclCovers(parsed.acl, path)) return { ok: false, reason: 'acl' };
  return { ok: true, fields: parsed };
}

/** Nodes' clocks may differ a little: a token minted "now" on one is valid on another. */
const CLOCK_SKEW_SECONDS = 60;

export function aclCovers(acl: string[], path: string): boolean {
  return acl.some((entry) => (entry.endsWith('*') ? path.startsWith(entry.slice(0, -1)) : path === entry));
}

function hmacHex(body: string, key: string): string {
  return createHmac('sha256', tokenKeyBytes(key)).update(body, 'utf8').digest('hex');
}
