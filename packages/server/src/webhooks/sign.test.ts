import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { bodySha256, signDelivery, SignatureError, verifyDelivery, type SignatureErrorCode } from './sign.js';

const secret = 'whsec_4f9c2b7e1a8d3c6f0e5b9a2d7c4e1f8a';
const body = JSON.stringify({ type: 'deploy', event: 'end', orgName: 'acme', appName: 'demo', taskName: 't_1' });
const base = { secret, issuer: 'https://edge.example.com', subscriptionName: 'ops_hook', body, nowSeconds: 1_800_000_000 };

async function codeOf(p: Promise<unknown>): Promise<SignatureErrorCode | 'ok' | 'other'> {
  return p.then(
    () => 'ok' as const,
    (e: unknown) => (e instanceof SignatureError ? e.code : 'other'),
  );
}

describe('delivery signature (x-rockit-subscriptions)', () => {
  it('is an HS256 JWT with iss, sub, iat, exp and the body sha256', async () => {
    const token = await signDelivery({ ...base, ttlSeconds: 120 });
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'HS256', typ: 'JWT' });
    expect(decodeJwt(token)).toEqual({
      iss: 'https://edge.example.com',
      sub: 'ops_hook',
      iat: 1_800_000_000,
      exp: 1_800_000_120,
      sha256: bodySha256(body),
    });
    expect(bodySha256('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('verifies with the right secret, body, issuer and subscription', async () => {
    const token = await signDelivery(base);
    const claims = await verifyDelivery(token, { secret, body, issuer: base.issuer, subscriptionName: 'ops_hook', nowSeconds: base.nowSeconds + 10 });
    expect(claims.sub).toBe('ops_hook');
  });

  it('refuses a wrong secret, another body, other claims, expiry and garbage', async () => {
    const token = await signDelivery(base);
    const now = base.nowSeconds + 10;
    expect(await codeOf(verifyDelivery(token, { secret: `${secret}x`, body, nowSeconds: now }))).toBe('invalid-signature');
    expect(await codeOf(verifyDelivery(token, { secret, body: `${body} `, nowSeconds: now }))).toBe('body-mismatch');
    expect(await codeOf(verifyDelivery(token, { secret, body, subscriptionName: 'other', nowSeconds: now }))).toBe('claims-mismatch');
    expect(await codeOf(verifyDelivery(token, { secret, body, issuer: 'https://evil.example', nowSeconds: now }))).toBe('claims-mismatch');
    expect(await codeOf(verifyDelivery(token, { secret, body, nowSeconds: base.nowSeconds + 3600 }))).toBe('expired');
    expect(await codeOf(verifyDelivery('not.a.jwt', { secret, body, nowSeconds: now }))).toBe('invalid-signature');
    const [h, p] = token.split('.');
    expect(await codeOf(verifyDelivery(`${h}.${p}.`, { secret, body, nowSeconds: now }))).toBe('invalid-signature');
  });
});
