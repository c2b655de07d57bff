/**
 * Small secrets at rest (deployment S3 secret keys, subscription secrets) sealed with AES-256-GCM
 * under the installation key (api.md §9.1: "encrypted at rest with the installation key").
 *
 * Sealed form: `v1:` + base64url( iv (12 bytes) | tag (16 bytes) | ciphertext ). A fresh random
 * IV per seal, so sealing the same value twice gives different strings. An optional `context`
 * (e.g. `deployment:acme/cdn_eu:s3.secretAccessKey`) is bound as associated data: a sealed value
 * copied to another row or field does not open there.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export const SECRET_BOX_VERSION = 'v1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export type SecretBoxErrorCode = 'invalid-key' | 'malformed' | 'unsupported-version' | 'wrong-key-or-tampered';

export class SecretBoxError extends Error {
  override readonly name = 'SecretBoxError';
  readonly code: SecretBoxErrorCode;
  constructor(code: SecretBoxErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * Reads an installation key as configured: 64 hex digits or base64/base64url of 32 bytes.
 * Throws `invalid-key` otherwise (the message never repeats the value).
 */
export function parseInstallationKey(text: string): Buffer {
  const t = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(t)) key = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) key = Buffer.from(t.replace(/\+/g, '-').replace(/\//g, '_').replace(/=$/, ''), 'base64url');
  if (!key || key.length !== KEY_BYTES) {
    throw new SecretBoxError('invalid-key', 'the installation key must be 32 bytes, as 64 hex digits or base64');
  }
  return key;
}

export class SecretBox {
  private readonly key: Buffer;

  /** `key`: exactly 32 bytes (see `parseInstallationKey`). */
  constructor(key: Uint8Array) {
    if (key.length !== KEY_BYTES) throw new SecretBoxError('invalid-key', 'the installation key must be 32 bytes');
    this.key = Buffer.from(key);
  }

  /** Encrypts a UTF-8 string. */
  encrypt(plaintext: string, context = ''): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return `${SECRET_BOX_VERSION}:${Buffer.concat([iv, tag, ciphertext]).toString('base64url')}`;
  }

  /**
   * Decrypts a sealed string. Throws `unsupported-version` for another prefix, `malformed` for a
   * truncated or non-base64url body, `wrong-key-or-tampered` when authentication fails (wrong
   * key, other context, or any changed byte). Never returns unauthenticated data.
   */
  decrypt(sealed: string, context = ''): string {
    const colon = sealed.indexOf(':');
    if (colon < 0) throw new SecretBoxError('malformed', 'a sealed secret starts with a version prefix');
    const version = sealed.slice(0, colon);
    if (version !== SECRET_BOX_VERSION) throw new SecretBoxError('unsupported-version', `sealed secret version ${JSON.stringify(version.slice(0, 8))} is not supported`);
    const body = sealed.slice(colon + 1);
    if (!/^[A-Za-z0-9_-]*$/.test(body)) throw new SecretBoxError('malformed', 'a sealed secret body is base64url');
    const raw = Buffer.from(body, 'base64url');
    if (raw.length < IV_BYTES + TAG_BYTES) throw new SecretBoxError('malformed', 'the sealed secret is truncated');
    const iv = raw.subarray(0, IV_BYTES);
    const tag = raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES);
    const ciphertext = raw.subarray(IV_BYTES + TAG_BYTES);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretBoxError('wrong-key-or-tampered', 'the sealed secret does not open with this key (wrong key or tampered data)');
    }
  }
}
