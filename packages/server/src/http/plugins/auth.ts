import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError, missingParam } from '../../domain/errors.js';
import type { AuthService } from '../../services/auth.service.js';
import type { Principal } from '../../services/context.js';

/**
 * Which credential a route takes:
 * - `none`: public (srv, login, docs);
 * - `admin`: x-rockit-admin-token;
 * - `session`: x-rockit-besession-token (only /be/v1/auth and /be/v1/logout); read by the route;
 * - `user`: an auth token (x-rockit-beauth-token or Authorization: Bearer) or the API-key trio.
 */
export type AuthKind = 'none' | 'admin' | 'session' | 'user';

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: AuthKind;
  }
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

export const H = {
  admin: 'x-rockit-admin-token',
  session: 'x-rockit-besession-token',
  auth: 'x-rockit-beauth-token',
  org: 'x-rockit-orgname',
  user: 'x-rockit-username',
  key: 'x-rockit-api-key',
} as const;

const header = (req: FastifyRequest, name: string): string | undefined => {
  const v = req.headers[name];
  return typeof v === 'string' ? v : Array.isArray(v) ? v[0] : undefined;
};

const conflicting = (why: string) => new AppError('conflicting-credentials', why);

/** The principal of a request; throws the 400/401/403 of spec §2 (credential-combination rules). */
export async function authenticate(auth: AuthService, kind: AuthKind, req: FastifyRequest): Promise<Principal | undefined> {
  if (kind === 'none') return undefined;
  if (kind === 'admin') {
    const token = header(req, H.admin);
    if (!token) throw new AppError('token-missing', `header ${H.admin} is required`);
    return auth.authenticateAdmin(token, req.ip);
  }
  const trio = [header(req, H.org), header(req, H.user), header(req, H.key)];
  const trioCount = trio.filter((v) => v !== undefined).length;
  const authToken = header(req, H.auth);
  const authorization = header(req, 'authorization');
  const session = header(req, H.session);

  if (kind === 'session') {
    if (trioCount > 0 && session) throw conflicting('send either a session token or an API key, not both');
    if (trioCount > 0) throw new AppError('token-invalid', 'API keys are not accepted on this endpoint');
    if (!session) throw missingParam(H.session);
    return undefined;
  }

  if (trioCount > 0 && (authToken || authorization || session)) throw conflicting('send either a token or an API key, not both');
  if (trioCount > 0 && trioCount < 3) {
    throw conflicting(`an API key needs all three headers ${H.org}, ${H.user} and ${H.key}`);
  }
  if (authToken && authorization) throw conflicting(`send the auth token once: ${H.auth} or Authorization, not both`);
  if (trioCount === 3) return auth.authenticateApiKey(trio[0]!, trio[1]!, trio[2]!, req.ip);
  if (authToken) return auth.authenticateAuthToken(authToken);
  if (authorization) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!m) throw new AppError('token-invalid', 'Authorization must be "Bearer <auth token>"');
    return auth.authenticateAuthToken(m[1]);
  }
  if (session) throw new AppError('token-invalid', `a session token only works on /be/v1/auth and /be/v1/logout; exchange it for an auth token`);
  throw new AppError('token-missing', `send ${H.auth} (or Authorization: Bearer) or the API-key headers`);
}

/** Authenticates every request per its route's `config.auth` before the body is even parsed. */
export function registerAuth(app: FastifyInstance, auth: AuthService): void {
  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (req) => {
    const kind = req.routeOptions.config?.auth ?? 'none';
    req.principal = await authenticate(auth, kind, req);
  });
}

/** The authenticated principal of a route with auth admin or user (set by the onRequest hook). */
export function principal(req: FastifyRequest): Principal {
  if (!req.principal) throw new AppError('token-missing', 'credentials are required');
  return req.principal;
}
