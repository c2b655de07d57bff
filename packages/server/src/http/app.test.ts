import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loggerOptions, REDACTED_HEADERS } from './app.js';

describe('logging', () => {
  it('redacts every credential header from request logs', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) });
    const opts = loggerOptions('info') as pino.LoggerOptions;
    const log = pino(opts, sink);
    const headers = Object.fromEntries(REDACTED_HEADERS.map((h) => [h, `secret-${h}`]));
    log.info({ req: { headers: { ...headers, 'user-agent': 'ua' } } }, 'request');
    const out = lines.join('');
    expect(out).toContain('"user-agent":"ua"');
    for (const h of REDACTED_HEADERS) expect(out).not.toContain(`secret-${h}`);
    expect(out).toContain('[redacted]');
  });
});
