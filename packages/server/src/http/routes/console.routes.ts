import fs from 'node:fs';
import path from 'node:path';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { AppError } from '../../domain/errors.js';

/** Where the web console lives (issue 10); the single-page app answers every path below it. */
export const CONSOLE_PREFIX = '/apps/mc';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
};

/**
 * The console's Content-Security-Policy: its own scripts and styles only, no inline script, API
 * calls to this origin (and to the public URL, which upload URLs start with), never framed.
 */
export function consoleCsp(publicUrl: string | undefined): string {
  const connect = ["'self'", ...(publicUrl ? [new URL(publicUrl).origin] : [])].join(' ');
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src ${connect}`,
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join('; ');
}

/**
 * The file a console path names inside `dir`, or null when it names none there: anything that is not
 * plain segments (`..`, `.`, empty, backslashes, NUL, encoded separators) is refused, never resolved.
 */
export function consoleFile(dir: string, rest: string): string | null {
  if (rest === '') return null;
  let decoded: string;
  try {
    decoded = decodeURIComponent(rest);
  } catch {
    return null;
  }
  const segments = decoded.split('/');
  for (const s of segments) {
    if (s === '' || s === '.' || s === '..' || /[\\\0]/.test(s) || s.length > 255) return null;
  }
  const file = path.resolve(dir, ...segments);
  if (!file.startsWith(dir + path.sep)) return null;
  return file;
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * GET /apps/mc/* — the built console (packages/console/dist): its files, and index.html for every
 * other path (client-side routes). 503 `unavailable` when the console was not built.
 */
export const consoleRoutes: FastifyPluginAsync<{ dir: string; publicUrl?: string }> = async (app, opts) => {
  const dir = path.resolve(opts.dir);
  const csp = consoleCsp(opts.publicUrl);
  const send = (reply: FastifyReply, file: string, cache: string) => {
    const type = TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
    return reply
      .header('content-type', type)
      .header('cache-control', cache)
      .header('content-security-policy', csp)
      .header('x-content-type-options', 'nosniff')
      .header('x-frame-options', 'DENY')
      .header('referrer-policy', 'no-referrer')
      .send(fs.createReadStream(file));
  };
  const handler = async (req: { url: string; params: unknown }, reply: FastifyReply) => {
    const index = path.join(dir, 'index.html');
    if (!isFile(index)) {
      throw new AppError('unavailable', 'the web console is not built: run `npm run build` (or set ROCKIT_CONSOLE_DIR to a built console)');
    }
    const rest = ((req.params as { '*'?: string })['*'] ?? '').split('?')[0] ?? '';
    const file = consoleFile(dir, rest);
    if (file !== null && isFile(file)) {
      // Vite names assets by content hash: they never change.
      const immutable = rest.startsWith('assets/');
      return send(reply, file, immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    }
    // A missing asset is a 404, not the page (a stale tab asking for an old bundle must not get HTML).
    if (rest.startsWith('assets/') || /\.[a-z0-9]{1,8}$/i.test(rest) || (rest !== '' && file === null && /(^|\/)\.\.?(\/|$)|[\\\0]/.test(safeDecode(rest)))) {
      throw new AppError('not-found', `no such file in the console: ${rest.slice(0, 200)}`);
    }
    return send(reply, index, 'no-cache');
  };
  const route = { schema: { hide: true }, config: { auth: 'none' as const } };
  app.get(CONSOLE_PREFIX, route, async (_req, reply) => reply.redirect(`${CONSOLE_PREFIX}/`, 302));
  app.get(`${CONSOLE_PREFIX}/`, route, handler);
  app.get(`${CONSOLE_PREFIX}/*`, route, handler);
};

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
