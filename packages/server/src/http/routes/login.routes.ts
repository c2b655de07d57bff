import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AuthService } from '../../services/auth.service.js';
import { H } from '../plugins/auth.js';
import { AuthResponse, LoginBody, LoginResponse } from '@rockit/contract';
import { BODY_ERRORS, OkEmpty, Security, errorResponses } from '../schemas/common.js';

/** POST /be/v1/login, /be/v1/auth, /be/v1/logout (spec §2.2). */
export const loginRoutes: FastifyPluginAsyncTypebox<{ services: { auth: AuthService } }> = async (app, { services }) => {
  const tags = ['auth'];

  app.post('/be/v1/login', {
    config: { auth: 'none' },
    schema: {
      tags, summary: 'Logs a user in; answers a session token', security: Security.none,
      description: 'Failed attempts are throttled per (org, username) and per client address: 429 rate-limited with Retry-After.',
      body: LoginBody,
      response: {
        200: LoginResponse,
        ...errorResponses(401, 403, 429, ...BODY_ERRORS),
      },
    },
  }, async (req) => ({ status: 'success' as const, ...(await services.auth.login(req.body, req.ip)) }));

  const sessionToken = (h: Record<string, string | string[] | undefined>) => String(h[H.session]);

  app.post('/be/v1/auth', {
    config: { auth: 'session' },
    schema: {
      tags, summary: 'Exchanges the session token for a short-lived auth token', security: Security.session,
      response: { 200: AuthResponse, ...errorResponses(401, 403) },
    },
  }, async (req) => ({ status: 'success' as const, auth: await services.auth.issueAuthToken(sessionToken(req.headers)) }));

  app.post('/be/v1/logout', {
    config: { auth: 'session' },
    schema: {
      tags, summary: 'Revokes the session and every auth token derived from it', security: Security.session,
      response: { 200: OkEmpty, ...errorResponses(401) },
    },
  }, async (req) => {
    await services.auth.logout(sessionToken(req.headers));
    return { status: 'success' as const };
  });
};
