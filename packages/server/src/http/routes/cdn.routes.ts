import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ByteRange } from '../../storage/blob-store.js';
import { RangeNotSatisfiable, type DepotService } from '../../services/depot.service.js';
import type { DownloadKeyService } from '../../services/download-key.service.js';

/**
 * Parses a single `bytes=` range (RFC 9110 §14.1.2) against the object size. Returns undefined for
 * no (or an unsupported multi-part / malformed) range — served whole, as the RFC allows — and
 * 'unsatisfiable' when the range lies outside the object.
 */
export function parseRange(header: string | undefined, sizeBytes: number): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, sizeBytes - suffix), end: sizeBytes - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? undefined : Number(m[2]);
  if (end !== undefined && end < start) return undefined;
  if (start >= sizeBytes) return 'unsatisfiable';
  return end === undefined ? { start } : { start, end: Math.min(end, sizeBytes - 1) };
}

/** Where /cdn takes a download token: query `token` or `__token__` (Akamai's default name), or this header. */
export const DOWNLOAD_TOKEN_HEADER = 'x-rockit-download-token';

/**
 * GET/HEAD /cdn/{path} (spec §9.2): the depot's published files with Range (206, 416), ETag and
 * If-None-Match (304). A bad path and a missing file are the same 404. Files of an app with
 * download keys need a download token (403 forbidden without a valid one, before anything else).
 */
export const cdnRoutes: FastifyPluginAsyncTypebox<{ services: { depot: DepotService; keys: DownloadKeyService } }> = async (app, { services }) => {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/cdn/*',
    config: { auth: 'none' as const },
    schema: {
      tags: ['cdn'],
      summary: 'A published file of the depot (images, patches, release.json), with Range support',
      params: Type.Object({ '*': Type.String() }),
      querystring: Type.Object({
        token: Type.Optional(Type.String({ description: 'download token (apps with download keys)' })),
        __token__: Type.Optional(Type.String({ description: 'download token, Akamai\'s parameter name' })),
      }),
      headers: Type.Object({
        range: Type.Optional(Type.String()),
        'if-none-match': Type.Optional(Type.String()),
        [DOWNLOAD_TOKEN_HEADER]: Type.Optional(Type.String({ description: 'download token (apps with download keys)' })),
      }),
    },
    handler: async (req, reply) => {
      const path = req.params['*'];
      const header = req.headers[DOWNLOAD_TOKEN_HEADER];
      await services.keys.checkDepotAccess(path, req.query.token ?? req.query.__token__ ?? (Array.isArray(header) ? header[0] : header));
      const meta = await services.depot.head(path);
      reply.header('accept-ranges', 'bytes').header('etag', meta.etag).header('content-type', meta.contentType);
      const inm = req.headers['if-none-match'];
      if (inm !== undefined && inm.split(',').map((s) => s.trim()).some((t) => t === meta.etag || t === '*' || t === `W/${meta.etag}`)) {
        return reply.code(304).send();
      }
      const ifRange = req.headers['if-range'];
      const range = ifRange === undefined || ifRange === meta.etag ? parseRange(req.headers.range, meta.sizeBytes) : undefined;
      if (range === 'unsatisfiable') {
        return reply
          .code(416)
          .header('content-range', `bytes */${meta.sizeBytes}`)
          .header('content-type', 'application/json')
          .send({ status: 'error', error: 'range-not-satisfiable', message: `the range is outside the file (${meta.sizeBytes} bytes)` });
      }
      if (req.method === 'HEAD') {
        reply.header('content-length', String(meta.sizeBytes));
        return reply.code(200).send();
      }
      try {
        const got = await services.depot.read(path, range);
        reply.header('content-length', String(got.end - got.start + 1));
        if (range) reply.code(206).header('content-range', `bytes ${got.start}-${got.end}/${got.sizeBytes}`);
        return reply.send(got.body);
      } catch (err) {
        if (err instanceof RangeNotSatisfiable) {
          return reply.code(416).header('content-range', `bytes */${err.sizeBytes}`).send({ status: 'error', error: 'range-not-satisfiable', message: err.message });
        }
        throw err;
      }
    },
  });
};
