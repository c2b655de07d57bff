import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { loggerOptions, redactUrl, REDACTED_HEADERS } from './app.js';

describe('logging', () => {
  it('redacts every credential header from request logs', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) });
    const opts = loggerOptions('info') as pino.LoggerOptions;
    const log = pino(opts, sink);
    const headers = Object.fromEntries(REDACTED_HEADERS.map((h) => [h, `secret-${h}`]));
    log.info({ headers: { ...headers, 'user-agent': 'ua' } }, 'request');
    const out = lines.join('');
    expect(out).toContain('"user-agent":"ua"');
    for (const h of REDACTED_HEADERS) expect(out).not.toContain(`secret-${h}`);
    expect(out).toContain('[redacted]');
  });

  it('masks credential query parameters (upload and download tokens) in logged request URLs', async () => {
    expect(redactUrl('/be/v1/uploads/t_1?token=rkup_secret&x=1')).toBe('/be/v1/uploads/t_1?token=[redacted]&x=1');
    expect(redactUrl('/cdn/a?x=1&TOKEN=abc#f')).toBe('/cdn/a?x=1&TOKEN=[redacted]#f');
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) });
    const app = Fastify({ logger: { ...(loggerOptions('info') as object), stream: sink } });
    app.get('/be/v1/uploads/:t', async () => ({ ok: true }));
    await app.inject({ method: 'GET', url: '/be/v1/uploads/t_1?token=rkup_very_secret' });
    await app.close();
    const out = lines.join('');
    expect(out).toContain('incoming request');
    expect(out).toContain('token=[redacted]');
    expect(out).not.toContain('rkup_very_secret');
  });
});
