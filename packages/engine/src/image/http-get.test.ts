import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpGetError, httpGet, httpPost } from './http-get.js';

describe('httpGet / httpPost', () => {
  let server: Server;
  let base: URL;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (b: Buffer) => parts.push(b));
      req.on('end', () => {
        if (req.url === '/echo') {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ method: req.method, type: req.headers['content-type'], length: req.headers['content-length'], body: Buffer.concat(parts).toString() }));
        } else if (req.url === '/big') {
          res.end(Buffer.alloc(10_000, 1));
        } else res.writeHead(404).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('posts a body with its length and reads the answer; a second request reuses the connection', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await httpPost(new URL('echo', base), { 'content-type': 'application/json' }, Buffer.from('{"a":1}'), 5000);
      expect(res.status).toBe(200);
      expect(JSON.parse(Buffer.from(await res.body(1024)).toString())).toEqual({ method: 'POST', type: 'application/json', length: '7', body: '{"a":1}' });
    }
    const get = await httpGet(new URL('echo', base), {}, 5000);
    expect(JSON.parse(Buffer.from(await get.body(1024)).toString())).toMatchObject({ method: 'GET', body: '' });
  });

  it('caps the body it reads, and refuses an unreachable server as a retryable HttpGetError', async () => {
    const res = await httpGet(new URL('big', base), {}, 5000);
    expect((await res.body(100)).length).toBe(100);
    const err = await httpPost(new URL('http://127.0.0.1:1/x'), {}, Buffer.from('x'), 2000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpGetError);
    expect((err as HttpGetError).retryable).toBe(true);
  });
});
