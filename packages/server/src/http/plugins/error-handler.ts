import { APP_NAME_PATTERN, APP_NAME_RULE, NAME_PATTERN, NAME_RULE } from '../../domain/names.js';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../domain/errors.js';

interface AjvError {
  keyword: string;
  instancePath: string;
  params: Record<string, any>;
  message?: string;
}

/** `/permissions/apps` → `permissions.apps`; `/roles/0` → `roles[0]`. */
function paramPath(instancePath: string, leaf?: string): string {
  const parts = instancePath.split('/').filter((p) => p.length > 0);
  if (leaf !== undefined) parts.push(leaf);
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

/** Maps a schema validation failure to missing-param / invalid-param / invalid-json (spec §1.2). */
function fromValidation(err: FastifyError, req: FastifyRequest): AppError {
  const context = (err as any).validationContext as string | undefined;
  const first = (err.validation as AjvError[] | undefined)?.[0];
  if (!first) return new AppError('invalid-param', err.message);
  if (context === 'body' && first.instancePath === '') {
    if (req.body === undefined) {
      const required = (req.routeOptions.schema?.body as any)?.required as string[] | undefined;
      const param = required?.[0];
      if (param) return new AppError('missing-param', `${param} is required (the request has no body)`, { param });
    }
    if (first.keyword === 'type') return new AppError('invalid-json', 'the body must be a JSON object');
  }
  if (first.keyword === 'required') {
    const param = paramPath(first.instancePath, first.params.missingProperty);
    return new AppError('missing-param', `${param} is required`, { param });
  }
  if (first.keyword === 'additionalProperties') {
    const param = paramPath(first.instancePath, first.params.additionalProperty);
    return new AppError('invalid-param', `${param} is not a known field`, { param });
  }
  const param = paramPath(first.instancePath) || context || 'body';
  // Name rules in words (issue 13): people read these, the pattern is in the OpenAPI document.
  if (first.keyword === 'pattern') {
    const pattern = (first.params as { pattern?: unknown } | undefined)?.pattern;
    if (pattern === APP_NAME_PATTERN) return new AppError('invalid-param', `${param} must be an app name: ${APP_NAME_RULE}`, { param });
    if (pattern === NAME_PATTERN) return new AppError('invalid-param', `${param} must be a name: ${NAME_RULE}`, { param });
  }
  return new AppError('invalid-param', `${param} ${first.message ?? 'is invalid'}`, { param });
}

/** Normalises anything thrown into an AppError; unknown errors become `internal`. */
export function toAppError(err: unknown, req: FastifyRequest): AppError {
  if (err instanceof AppError) return err;
  const e = err as FastifyError;
  if (e?.validation) return fromValidation(e, req);
  switch (e?.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('unsupported-media-type', 'this endpoint takes application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('payload-too-large', 'the body is larger than the configured limit');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new AppError('invalid-json', 'the body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('invalid-json', 'the body does not match its Content-Length');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new AppError('uri-too-long', 'a path segment is longer than 100 characters');
    case 'FST_ERR_BAD_URL':
      return new AppError('invalid-param', 'the path is not a valid URL (bad percent-encoding)', { param: 'path' });
  }
  if (e?.statusCode === 400 && (e.name === 'SyntaxError' || e instanceof SyntaxError)) {
    return new AppError('invalid-json', 'the body is not valid JSON');
  }
  if (e?.statusCode === 413) return new AppError('payload-too-large', 'the body is larger than the configured limit');
  if (e?.statusCode === 414) return new AppError('uri-too-long', 'the URL is too long');
  if (e?.statusCode === 415) return new AppError('unsupported-media-type', 'unsupported content type');
  return new AppError('internal', 'internal error');
}

export function sendError(reply: FastifyReply, req: FastifyRequest, appError: AppError): FastifyReply {
  const { retryAfterSeconds, ...details } = appError.details;
  if (retryAfterSeconds !== undefined) reply.header('retry-after', String(retryAfterSeconds));
  const body: Record<string, unknown> = { status: 'error', error: appError.code, message: appError.message, ...details };
  if (appError.code === 'internal') body.requestId = req.id;
  return reply.code(appError.status).type('application/json; charset=utf-8').send(body);
}

/**
 * Fastify's `frameworkErrors`: errors raised before routing (a path segment over maxParamLength, a
 * bad percent-encoding) answer in the envelope too. Hooks have not run, so x-request-id is set here.
 */
export function frameworkErrorEnvelope(err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.header('x-request-id', req.id);
  return sendError(reply, req, toAppError(err, req));
}

/**
 * Fastify's `clientErrorHandler`: requests Node cannot even parse (malformed HTTP, headers too large,
 * headers not sent in time) never reach Fastify; they are answered on the raw socket, in the envelope.
 */
export function clientErrorEnvelope(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection has nobody left to answer (Node's own behaviour).
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const appError =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? new AppError('request-timeout', 'the request was not received in time')
    : err.code === 'HPE_HEADER_OVERFLOW' ? new AppError('headers-too-large', 'the request headers are too large')
    : new AppError('bad-request', 'the request is not valid HTTP');
  const body = JSON.stringify({ status: 'error', error: appError.code, message: appError.message });
  this.log.debug({ err }, 'client error');
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${appError.status} ${STATUS_CODES[appError.status]}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${randomUUID()}\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

/** The one place errors become HTTP: the envelope of spec §1.2, never a stack or an internal path. */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err, req, reply) => {
    const appError = toAppError(err, req);
    if (appError.code === 'internal') req.log.error({ err }, 'unhandled error');
    else if (appError.status >= 500) req.log.warn({ err }, 'request failed');
    return sendError(reply, req, appError);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, req, new AppError('not-found', `no route ${req.method} ${req.url.split('?')[0]}`)));
}
