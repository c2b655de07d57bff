import type { FastifyInstance } from 'fastify';
import { AppError } from '../../domain/errors.js';
import { constantTimeEqual } from '../../domain/secrets.js';
import type { Metrics } from '../../metrics/metrics.js';

const UPLOAD_ROUTE = '/be/v1/uploads/:taskName';

/**
 * `GET /metrics` (Prometheus text format) behind its own token (`Authorization: Bearer <ROCKIT_METRICS_TOKEN>`),
 * and an onResponse hook timing every request by route pattern and status. Registered only when the
 * token is set; without it `/metrics` is an unknown route (404 in the envelope).
 */
export function registerMetrics(app: FastifyInstance, metrics: Metrics, token: string): void {
  // Callback style, not async: no promise per response.
  app.addHook('onResponse', (req, reply, done) => {
    try {
      const route = req.routeOptions.url;
      metrics.request(req.method, route, reply.statusCode, reply.elapsedTime / 1000);
      if (route === UPLOAD_ROUTE && req.method === 'PUT' && reply.statusCode === 200) {
        const length = Number(req.headers['content-length']);
        if (Number.isSafeInteger(length)) metrics.uploaded(length);
      }
    } catch (e) {
      done(e as Error);
      return;
    }
    done();
  });
  app.get('/metrics', { schema: { hide: true }, config: { auth: 'none' } }, async (req, reply) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!req.headers.authorization) throw new AppError('token-missing', 'send Authorization: Bearer <the metrics token>');
    if (!m || !constantTimeEqual(m[1]!, token)) throw new AppError('token-invalid', 'the metrics token is invalid');
    const { contentType, body } = await metrics.text();
    return reply.header('content-type', contentType).header('cache-control', 'no-store').send(body);
  });
}
