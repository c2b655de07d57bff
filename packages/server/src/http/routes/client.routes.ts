import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { TraceService } from '../../services/trace.service.js';
import type { ClientIdentity, DownloadKeyService } from '../../services/download-key.service.js';
import { principal } from '../plugins/auth.js';
import { ClientAuthBody, ClientAuthResponse, TraceReceiptResponse, TraceSchema } from '@rockit/contract';
import { BODY_ERRORS, ListMeta, ListQuery, Name, Ok, Security, errorResponses, toRawListQuery } from '../schemas/common.js';

/** Headers of the client API (api.md §9.2, §9.3; README "Download keys and traces"). */
export const CLIENT_H = { token: 'x-rockit-download-token', key: 'x-rockit-download-key' } as const;

/** Content types POST /client/v1/traces takes; the form (binary, zstd, NDJSON) is recognised by content. */
export const TRACE_CONTENT_TYPES = ['application/octet-stream', 'application/x-ndjson', 'application/zstd'];

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

declare module 'fastify' {
  interface FastifyRequest {
    /** POST /client/v1/traces: the app its credential lets in, identified before the body is read. */
    traceClient?: ClientIdentity;
  }
}

/** POST /client/v1/auth, POST /client/v1/traces (game launchers) and GET /be/v1/traces. */
export const clientRoutes: FastifyPluginAsyncTypebox<{ services: { keys: DownloadKeyService; traces: TraceService }; maxTraceBytes: number }> = async (app, { services, maxTraceBytes }) => {
  app.post('/client/v1/auth', {
    config: { auth: 'none' },
    schema: {
      tags: ['client'], summary: 'Exchanges a download key for a short-lived download token and the current release', security: Security.none,
      description:
        'One identical 401 invalid-credentials for an unknown org, app or key (failures are throttled per client address: 429). ' +
        'The token (Akamai EdgeAuth 2.0 form) opens /cdn/dxf/{org}/{app}/* and /cdn/pat/{org}/{app}/*; `origins` lists tokens for ' +
        'the app\'s deployments that verify downloads (downloadAuth).',
      body: ClientAuthBody,
      response: {
        200: ClientAuthResponse,
        ...errorResponses(401, 429, ...BODY_ERRORS),
      },
    },
  }, async (req) => ({ status: 'success' as const, ...(await services.keys.clientAuth(req.body, req.ip)) }));

  await app.register(async (scope) => {
    // Trace bodies are bytes: parsed as a Buffer up to the trace limit (413 payload-too-large beyond).
    scope.addContentTypeParser(TRACE_CONTENT_TYPES, { parseAs: 'buffer', bodyLimit: maxTraceBytes }, (_req, body, done) => done(null, body));
    scope.post('/client/v1/traces', {
      config: { auth: 'none' },
      bodyLimit: maxTraceBytes,
      // Credentials first: a request without a valid one is answered before its body is read.
      onRequest: async (req) => {
        req.traceClient = await services.traces.identify({ token: one(req.headers[CLIENT_H.token]), key: one(req.headers[CLIENT_H.key]) }, req.ip);
      },
      schema: {
        tags: ['client'], summary: 'Uploads one play trace (binary or NDJSON, plain or zstd)', security: Security.none,
        description:
          `Credentials: header ${CLIENT_H.token} (a download token) or ${CLIENT_H.key} (an access key). Content type ` +
          `${TRACE_CONTENT_TYPES.join(', ')}. A trace naming another org or app is 403; a malformed one 400 invalid-param (param body, ` +
          '`reason` the engine\'s trace error code); one with no read on the build 400 invalid-param (param records).',
        headers: Type.Object({ [CLIENT_H.token]: Type.Optional(Type.String()), [CLIENT_H.key]: Type.Optional(Type.String()) }),
        response: {
          202: TraceReceiptResponse,
          ...errorResponses(401, 403, 409, 429, ...BODY_ERRORS),
        },
      },
    }, async (req, reply) => {
      const trace = await services.traces.intake(
        { token: one(req.headers[CLIENT_H.token]), key: one(req.headers[CLIENT_H.key]) },
        Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
        req.ip,
        req.traceClient,
      );
      return reply.code(202).send({ status: 'success' as const, trace });
    });
  });

  app.get('/be/v1/traces', {
    config: { auth: 'user' },
    schema: {
      tags: ['traces'], summary: 'Lists the traces of an app (trainings.read)', security: Security.user,
      querystring: Type.Object({ ...ListQuery, appName: Name('the app (required)') }),
      response: { 200: Ok({ ...ListMeta, traces: Type.Array(Type.Partial(TraceSchema)) }), ...errorResponses(401, 403) },
    },
  }, async (req) => {
    const page = await services.traces.list(principal(req), { appName: req.query.appName }, toRawListQuery(req.query));
    return { status: 'success' as const, total: page.total, offset: page.offset, limit: page.limit, traces: page.items };
  });
};
