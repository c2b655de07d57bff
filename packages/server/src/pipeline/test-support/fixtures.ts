// Test factories for the pipeline: small tars made with tar-stream, temp folders, a local HTTP server.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tarStream from 'tar-stream';

export interface TarEntrySpec {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  content?: Buffer | string;
  mode?: number;
  linkname?: string;
}

/** Builds a tar in memory from entries (test inputs are small). */
export async function makeTar(entries: TarEntrySpec[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      mtime: new Date(0),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
    };
    if (type === 'file') {
      const body = typeof e.content === 'string' ? Buffer.from(e.content) : (e.content ?? Buffer.alloc(0));
      await new Promise<void>((resolve, reject) => pack.entry({ ...header, size: body.length }, body, (err) => (err ? reject(err) : resolve())));
    } else {
      await new Promise<void>((resolve, reject) => pack.entry(header, (err) => (err ? reject(err) : resolve())));
    }
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export function gzip(b: Buffer): Buffer {
  return gzipSync(b);
}

/** Deterministic pseudo-random bytes (xorshift32), so test data never depends on the run. */
export function pseudoRandomBytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export function sha256Hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export async function makeTempDir(label: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `rockit-p0-${label}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface TestHttpServer {
  baseUrl: string;
  close(): Promise<void>;
}

/** A node:http server on a free loopback port with the given handler. */
export async function startHttpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestHttpServer> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port that nothing listens on (bound then released). */
export async function unusedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
