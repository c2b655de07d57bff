import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errorResponses, Ok, Security } from '../schemas/common.js';

export interface Versions {
  edge: string;
  engine: string;
  api: 'v1';
  formats: { dxf: number; patch: number; trace: number };
}

export interface HealthReport {
  /** Ready to serve: database reachable, every check ok, workers alive when this node runs them. */
  ready: boolean;
  database: 'ok' | 'error';
  workers: { enabled: boolean; alive: boolean; concurrency: number };
  checks: Array<{ name: string; ok: boolean; message?: string }>;
}

const VersionsSchema = Type.Object({
  edge: Type.String(),
  engine: Type.String(),
  api: Type.Literal('v1'),
  formats: Type.Object({ dxf: Type.Integer(), patch: Type.Integer(), trace: Type.Integer() }),
});

const HealthSchema = Type.Object({
  live: Type.Literal(true),
  ready: Type.Boolean(),
  database: Type.Union([Type.Literal('ok'), Type.Literal('error')]),
  workers: Type.Object({ enabled: Type.Boolean(), alive: Type.Boolean(), concurrency: Type.Integer() }),
  checks: Type.Array(Type.Object({ name: Type.String(), ok: Type.Boolean(), message: Type.Optional(Type.String()) })),
});

/** /srv/v1: versions and health, no credentials. */
export const srvRoutes: FastifyPluginAsyncTypebox<{ health: () => Promise<HealthReport>; versions: Versions }> = async (app, opts) => {
  app.get('/srv/v1/versions', {
    config: { auth: 'none' },
    schema: {
      tags: ['srv'], summary: 'Versions of the service, engine, API and file formats', security: Security.none,
      response: { 200: Ok({ versions: VersionsSchema }), ...errorResponses() },
    },
  }, async () => ({ status: 'success' as const, versions: opts.versions }));

  app.get('/srv/v1/health', {
    config: { auth: 'none' },
    schema: {
      tags: ['srv'],
      summary: 'Liveness and readiness',
      description: 'Answers 200 when ready, 503 (`status: "error"`, `error: "unavailable"`, same `health` object) when not.',
      security: Security.none,
      response: {
        200: Ok({ health: HealthSchema }),
        503: Type.Object({ status: Type.Literal('error'), error: Type.Literal('unavailable'), message: Type.String(), health: HealthSchema }),
        ...errorResponses(),
      },
    },
  }, async (_req, reply) => {
    const h = await opts.health();
    const health = { live: true as const, ...h };
    if (!h.ready) return reply.code(503).send({ status: 'error' as const, error: 'unavailable' as const, message: 'not ready', health });
    return { status: 'success' as const, health };
  });
};
