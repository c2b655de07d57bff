import type { Readable } from 'node:stream';
import { Type, type FastifyPluginAsyncTypebox, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { KnownChunksBody, KnownChunksResponse, SubmitBuildBody, SubmitBuildResponse, TaskSchema, UploadStatusSchema, type SubmitBuildAnswer } from '@rockit/contract';
import type { BuildService } from '../../services/build.service.js';
import type { UploadService } from '../../services/upload.service.js';
import { missingParam } from '../../domain/errors.js';
import { principal } from '../plugins/auth.js';
import { BODY_ERRORS, Ok, Security, errorResponses } from '../schemas/common.js';

/** Body limit of POST /be/v1/builds/chunks. */
const CHUNKS_BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * POST /be/v1/builds (spec §7.2; apps.update), the upload target PUT /be/v1/uploads/{taskName}
 * and its status GET (decided: the one-time token in the URL is the credential, so CI tools can
 * PUT with plain curl). The PUT body is streamed to the blob store in multipart parts, never
 * buffered whole: its own plugin scope accepts any content type and hands the raw stream through
 * (Fastify's bodyLimit does not apply; the service enforces ROCKIT_MAX_UPLOAD_BYTES → 413). A
 * broken PUT is resumed with Content-Range from the GET's `receivedBytes` (UploadService).
 */
export const buildRoutes: FastifyPluginAsyncTypebox<{
  services: { builds: BuildService; uploads: UploadService };
  /** Where clients reach the API (ROCKIT_PUBLIC_URL, else the listen address), without a trailing slash. */
  publicUrl(): string;
}> = async (app, { services, publicUrl }) => {
  const tags = ['builds'];

  app.post('/be/v1/builds', {
    config: { auth: 'user' as const },
    schema: {
      tags, summary: 'Imports a native build (a tar) by URL or by upload', security: Security.user,
      body: SubmitBuildBody,
      response: {
        202: SubmitBuildResponse,
        ...errorResponses(401, 403, 409, ...BODY_ERRORS),
      },
    },
  }, async (req, reply) => {
    const out = await services.builds.submit(principal(req), req.body);
    const body: SubmitBuildAnswer = { status: 'success', task: out.task };
    // Never from the Host header: the URL carries a one-time token a forged Host would hand to another server.
    if (out.upload) body.upload = { url: `${publicUrl()}${out.upload.path}`, method: 'PUT', expires: out.upload.expires };
    return reply.code(202).send(body);
  });

  app.post('/be/v1/builds/chunks', {
    config: { auth: 'user' as const },
    // 10 000 ids of 66 bytes each fit with room to spare; anything larger is refused before parsing.
    bodyLimit: CHUNKS_BODY_LIMIT_BYTES,
    schema: {
      tags, summary: 'Which chunks (by SHA-256) the app\'s kept builds hold, for a delta push', security: Security.user,
      body: KnownChunksBody,
      response: {
        200: KnownChunksResponse,
        ...errorResponses(401, 403, 404, ...BODY_ERRORS),
      },
    },
  }, async (req) => ({ status: 'success' as const, known: await services.builds.knownChunks(principal(req), req.body) }));

  const uploadParams = {
    params: Type.Object({ taskName: Type.String({ maxLength: 100 }) }),
    querystring: Type.Object({ token: Type.Optional(Type.String({ maxLength: 200 })) }),
  };

  app.get('/be/v1/uploads/:taskName', {
    config: { auth: 'none' as const },
    schema: {
      tags, summary: 'How much of an upload the server holds (to resume a broken PUT)', ...uploadParams,
      response: { 200: Ok({ upload: UploadStatusSchema }), ...errorResponses(400, 404) },
    },
  }, async (req) => {
    if (!req.query.token) throw missingParam('token');
    return { status: 'success' as const, upload: await services.uploads.status(req.params.taskName, req.query.token) };
  });

  await app.register(async (scope) => {
    const uploads = scope.withTypeProvider<TypeBoxTypeProvider>();
    uploads.removeAllContentTypeParsers();
    uploads.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    uploads.put('/be/v1/uploads/:taskName', {
      config: { auth: 'none' as const },
      schema: {
        tags,
        summary: 'Uploads the tar of an import (the URL from POST /be/v1/builds), whole or in resumable pieces (Content-Range)',
        ...uploadParams,
        headers: Type.Object({
          'content-range': Type.Optional(Type.String({ maxLength: 100, description: 'bytes first-last/total to continue a broken upload at the server\'s receivedBytes' })),
        }),
        response: { 200: Ok({ task: TaskSchema, upload: UploadStatusSchema }), ...errorResponses(400, 401, 404, 409, 413) },
      },
    }, async (req) => {
      if (!req.query.token) throw missingParam('token');
      const raw = req.headers['content-length'];
      const contentLength = raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : undefined;
      const contentRange = req.headers['content-range'];
      const stream = (req.body as Readable | undefined) ?? req.raw;
      const out = await services.uploads.receive(req.params.taskName, req.query.token, stream, {
        ...(contentLength !== undefined ? { contentLength } : {}),
        ...(contentRange !== undefined ? { contentRange } : {}),
      });
      return { status: 'success' as const, ...out };
    });
  });
};
