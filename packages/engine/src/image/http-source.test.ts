// HttpImageSource over node:http (keep-alive): hostile and broken servers, on a real loopback server.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CorruptionError, EngineError } from '../errors.js';
import { HttpImageSource } from './image-source.js';

const FILE = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) & 0xff));
let server: Server | undefined;
let connections = 0;

async function serve(handler: (req: IncomingMessage, res: ServerResponse, nthOnSocket: number) => void): Promise<string> {
  connections = 0;
  const perSocket = new WeakMap<Socket, number>();
  server = createServer((req, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    handler(req, res, n);
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/img/`;
}

afterEach(async () => {
  const s = server;
  server = undefined;
  if (!s) return;
  s.closeAllConnections();
  await new Promise((r) => s.close(r));
});

/** A correct range server for FILE. */
function ranges(req: IncomingMessage, res: ServerResponse): void {
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (!m) return void res.writeHead(200, { 'content-length': FILE.length }).end(FILE);
  const [a, b] = [Number(m[1]), Number(m[2])];
  res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${FILE.length}`, 'content-length': b - a + 1 }).end(FILE.subarray(a, b + 1));
}

const quick = { attempts: 2, retryDelayMs: 1 };

describe('HttpImageSource (node:http)', () => {
  it('reads ranges and whole files over one kept-alive connection', async () => {
    const src = new HttpImageSource(await serve(ranges), quick);
    expect(Buffer.from(await src.readRange('packs/p.rkp', 100, 50))).toEqual(FILE.subarray(100, 150));
    expect(Buffer.from(await src.readRange('packs/p.rkp', 0, 5000))).toEqual(FILE);
    expect(Buffer.from(await src.readFile('image.json', 5000))).toEqual(FILE);
    expect(connections).toBe(1);
  });

  it('sends again at once on a kept-alive connection the server dropped (no retry attempt spent)', async () => {
    // The second request on every connection is dropped without an answer, as a server closing an idle connection.
    const src = new HttpImageSource(
      await serve((req, res, n) => (n >= 2 ? req.socket.destroy() : ranges(req, res))),
      { attempts: 1 },
    );
    expect(Buffer.from(await src.readRange('packs/p.rkp', 0, 10))).toEqual(FILE.subarray(0, 10));
    expect(Buffer.from(await src.readRange('packs/p.rkp', 10, 10))).toEqual(FILE.subarray(10, 20));
    expect(connections).toBe(2);
  });

  it('a dropped kept-alive connection that fails again is retried like any network error', async () => {
    // Three kept-alive connections, each dropping its second request: the resend meets another dropped one.
    const src = new HttpImageSource(
      await serve((req, res, n) => (n >= 2 ? req.socket.destroy() : setTimeout(() => ranges(req, res), 20))),
      { attempts: 2, retryDelayMs: 1 },
    );
    await Promise.all([0, 1, 2].map((i) => src.readRange('packs/p.rkp', i * 10, 10)));
    expect(connections).toBe(3);
    expect(Buffer.from(await src.readRange('packs/p.rkp', 100, 10))).toEqual(FILE.subarray(100, 110));
  });

  it('keeps the first bytes of a server that ignores Range, and drops the rest', async () => {
    const src = new HttpImageSource(await serve((_req, res) => res.writeHead(200, { 'content-length': FILE.length }).end(FILE)), quick);
    expect(Buffer.from(await src.readRange('packs/p.rkp', 10, 20))).toEqual(FILE.subarray(10, 30));
    expect(Buffer.from(await src.readRange('packs/p.rkp', 4990, 10))).toEqual(FILE.subarray(4990));
    await expect(src.readRange('packs/p.rkp', 4995, 10)).rejects.toMatchObject({ kind: 'pack-truncated' });
  });

  it('refuses a file larger than expected: by Content-Length, or while it streams without one', async () => {
    const declared = new HttpImageSource(await serve((_req, res) => res.writeHead(200, { 'content-length': FILE.length }).end(FILE)), quick);
    await expect(declared.readFile('image.json', 100)).rejects.toBeInstanceOf(CorruptionError);
    await new Promise((r) => server!.close(r));
    const chunked = new HttpImageSource(
      await serve((_req, res) => {
        res.writeHead(200);
        for (let i = 0; i < 50; i++) res.write(FILE.subarray(0, 1000));
        res.end();
      }),
      quick,
    );
    await expect(chunked.readFile('manifest-x.rkm', 10_000)).rejects.toMatchObject({ kind: 'manifest' });
  });

  it('retries cut-off bodies, too-long ranges and 5xx, then reports the source unavailable', async () => {
    let requests = 0;
    const src = new HttpImageSource(
      await serve((req, res) => {
        requests++;
        if (req.url?.includes('cut')) {
          res.writeHead(200, { 'content-length': 1000 });
          res.write(FILE.subarray(0, 10));
          setTimeout(() => req.socket.destroy(), 5);
        } else if (req.url?.includes('long')) {
          res.writeHead(206, { 'content-range': 'bytes 0-9/5000' }).end(FILE.subarray(0, 500));
        } else res.writeHead(503).end();
      }),
      quick,
    );
    for (const [read, n] of [[() => src.readFile('cut', 5000), 2], [() => src.readRange('packs/long', 0, 10), 2], [() => src.readFile('busy', 10), 2]] as const) {
      requests = 0;
      const err = await read().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).code).toBe('source-unavailable');
      expect(requests).toBe(n);
    }
  });

  it('times out a server that never answers, and maps 401/403 and 404', async () => {
    const src = new HttpImageSource(
      await serve((req, res) => {
        if (req.url?.includes('deny')) res.writeHead(403).end('no');
        else if (req.url?.includes('gone')) res.writeHead(404).end();
        else if (req.url?.includes('slow-body')) {
          res.writeHead(206, { 'content-range': 'bytes 0-9/10', 'content-length': 10 });
          res.write(FILE.subarray(0, 3)); // the rest never comes
        }
        // else: no answer at all
      }),
      { attempts: 1, timeoutMs: 150 },
    );
    await expect(src.readRange('packs/p.rkp', 0, 10)).rejects.toMatchObject({ code: 'source-unavailable', message: expect.stringMatching(/timed out/) });
    await expect(src.readRange('packs/slow-body', 0, 10)).rejects.toMatchObject({ code: 'source-unavailable' });
    await expect(src.readFile('deny', 10)).rejects.toMatchObject({ code: 'source-forbidden' });
    await expect(src.readRange('packs/gone', 0, 10)).rejects.toMatchObject({ kind: 'pack-missing' });
  });

  it('reports a refused connection as the source unavailable', async () => {
    const url = await serve(ranges);
    await new Promise((r) => server!.close(r));
    server = undefined;
    const err = await new HttpImageSource(url, quick).readFile('image.json', 10).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'source-unavailable', message: expect.stringMatching(/ECONNREFUSED/) });
  });
});
