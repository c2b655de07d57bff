/**
 * The `x-rockit-subscriptions` header of a delivery (api.md §11): a JWT, HS256 with the
 * subscription's secret, claims `iss` (the installation), `sub` (subscription name), `iat`, `exp`
 * and `sha256` (lower-case hex digest of the exact body bytes sent). A receiver verifies the
 * signature, the times, and that the body it received hashes to `sha256`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';

export const SIGNATURE_HEADER = 'x-rockit-subscriptions';
/** Lifetime of a delivery token; a retry signs again, so this only bounds replays. */
export const DEFAULT_SIGNATURE_TTL_SECONDS = 300;

export interface DeliveryClaims {
  iss: string;
  sub: string;
  iat: number;
  exp: number;
  sha256: string;
}

export const bodySha256 = (body: string | Uint8Array): string => createHash('sha256').update(body).digest('hex');

const keyOf = (secret: string): Uint8Array => new TextEncoder().encode(secret);

export interface SignOptions {
  secret: string;
  issuer: string;
  subscriptionName: string;
  body: string | Uint8Array;
  /** UNIX seconds; default now. */
  nowSeconds?: number;
  ttlSeconds?: number;
}

/** Signs one delivery body. */
export async function signDelivery(options: SignOptions): Promise<string> {
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  return new SignJWT({ sha256: bodySha256(options.body) })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(options.issuer)
    .setSubject(options.subscriptionName)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.ttlSeconds ?? DEFAULT_SIGNATURE_TTL_SECONDS))
    .sign(keyOf(options.secret));
}

export type SignatureErrorCode = 'invalid-signature' | 'expired' | 'claims-mismatch' | 'body-mismatch';

export class SignatureError extends Error {
  override readonly name = 'SignatureError';
  constructor(
    readonly code: SignatureErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface VerifyOptions {
  secret: string;
  body: string | Uint8Array;
  issuer?: string;
  subscriptionName?: string;
  /** UNIX seconds; default now. */
  nowSeconds?: number;
  clockToleranceSeconds?: number;
}

/**
 * What a receiver does (and what our tests use): checks the HS256 signature, `exp`/`iat`, the
 * expected `iss`/`sub` when given, and the body digest. Throws `SignatureError` with a code.
 */
export async function verifyDelivery(token: string, options: VerifyOptions): Promise<DeliveryClaims> {
  let payload;
  try {
    ({ payload } = await jwtVerify(token, keyOf(options.secret), {
      algorithms: ['HS256'],
      ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
      ...(options.subscriptionName !== undefined ? { subject: options.subscriptionName } : {}),
      ...(options.nowSeconds !== undefined ? { currentDate: new Date(options.nowSeconds * 1000) } : {}),
      clockTolerance: options.clockToleranceSeconds ?? 30,
      requiredClaims: ['iss', 'sub', 'iat', 'exp', 'sha256'],
    }));
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) throw new SignatureError('expired', 'the delivery token has expired');
    if (err instanceof joseErrors.JWTClaimValidationFailed) throw new SignatureError('claims-mismatch', `claim ${err.claim} is not as expected`);
    throw new SignatureError('invalid-signature', 'the delivery token is malformed or its signature is wrong');
  }
  const expected = Buffer.from(bodySha256(options.body), 'utf8');
  const claimed = Buffer.from(String(payload.sha256), 'utf8');
  if (claimed.length !== expected.length || !timingSafeEqual(claimed, expected)) {
    throw new SignatureError('body-mismatch', 'the body does not match the sha256 claim');
  }
  return payload as unknown as DeliveryClaims;
}
