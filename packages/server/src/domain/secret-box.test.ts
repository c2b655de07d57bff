import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseInstallationKey, SecretBox, SecretBoxError, type SecretBoxErrorCode } from './secret-box.js';

function codeOf(fn: () => unknown): SecretBoxErrorCode | 'no error' | 'other error' {
  try {
    fn();
    return 'no error';
  } catch (e) {
    return e instanceof SecretBoxError ? e.code : 'other error';
  }
}

describe('secret box', () => {
  const key = randomBytes(32);
  const box = new SecretBox(key);

  it('round-trips strings, including empty and non-ASCII, with fresh IVs', () => {
    for (const secret of ['', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'pässwörd ✓ 秘密']) {
      const sealed = box.encrypt(secret);
      expect(sealed).toMatch(/^v1:[A-Za-z0-9_-]+$/);
      expect(sealed).not.toContain(secret || '\u0000');
      expect(box.decrypt(sealed)).toBe(secret);
    }
    expect(box.encrypt('same')).not.toBe(box.encrypt('same'));
  });

  it('binds the context: a value sealed for one field does not open for another', () => {
    const sealed = box.encrypt('s3cret', 'deployment:acme/cdn:secretAccessKey');
    expect(box.decrypt(sealed, 'deployment:acme/cdn:secretAccessKey')).toBe('s3cret');
    expect(codeOf(() => box.decrypt(sealed, 'deployment:evil/cdn:secretAccessKey'))).toBe('wrong-key-or-tampered');
    expect(codeOf(() => box.decrypt(sealed))).toBe('wrong-key-or-tampered');
  });

  it('refuses a wrong key', () => {
    const sealed = box.encrypt('s3cret');
    expect(codeOf(() => new SecretBox(randomBytes(32)).decrypt(sealed))).toBe('wrong-key-or-tampered');
  });

  it('detects any changed byte (iv, tag or ciphertext)', () => {
    const sealed = box.encrypt('a secret of some length');
    const raw = Buffer.from(sealed.slice(3), 'base64url');
    for (const i of [0, 11, 12, 27, 28, raw.length - 1]) {
      const bad = Buffer.from(raw);
      bad[i] ^= 0x01;
      expect(codeOf(() => box.decrypt(`v1:${bad.toString('base64url')}`))).toBe('wrong-key-or-tampered');
    }
  });

  it('reports malformed and unknown-version input by code', () => {
    expect(codeOf(() => box.decrypt('no-prefix'))).toBe('malformed');
    expect(codeOf(() => box.decrypt('v2:AAAA'))).toBe('unsupported-version');
    expect(codeOf(() => box.decrypt('v1:short'))).toBe('malformed');
    expect(codeOf(() => box.decrypt('v1:not base64!'))).toBe('malformed');
  });

  it('accepts 32-byte keys as hex or base64 and refuses others without echoing them', () => {
    expect(parseInstallationKey(key.toString('hex')).equals(key)).toBe(true);
    expect(parseInstallationKey(key.toString('base64')).equals(key)).toBe(true);
    expect(parseInstallationKey(key.toString('base64url')).equals(key)).toBe(true);
    for (const bad of ['', 'abc', randomBytes(16).toString('hex'), randomBytes(33).toString('base64')]) {
      let err: unknown;
      try {
        parseInstallationKey(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SecretBoxError);
      if (bad) expect((err as Error).message).not.toContain(bad);
    }
    expect(codeOf(() => new SecretBox(randomBytes(31)))).toBe('invalid-key');
  });
});
