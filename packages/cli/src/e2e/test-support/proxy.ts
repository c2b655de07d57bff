// A throttling, stalling or cutting TCP proxy in front of a server, for upload resume tests
// (publish.e2e.test.ts, delta-push.e2e.test.ts).
import net, { type AddressInfo } from 'node:net';

/**
 * A TCP proxy to `target`. With `uploadBytesPerSecond`, it forwards upload bodies (connections
 * that start with `PUT /be/v1/uploads/`) no faster than that. With `stallUploadAfter`, the first
 * upload connection that has carried more than that many bytes stops being forwarded; both sides
 * stay open (a half-open connection). With `cutUploadAfter`, the first such connection stops being
 * forwarded, the proxy waits until the server says (GET of the upload URL) that it has stored some
 * of the bytes, then destroys both sides. A target that refuses (a server down) closes the client's
 * connection.
 */
export async function startProxy(
  target: URL,
  opts: { uploadBytesPerSecond?: number; stallUploadAfter?: number; cutUploadAfter?: number },
  listenPort = 0,
): Promise<{ url: string; stalls(): number; cuts(): number; close(): Promise<void> }> {
  let stalls = 0;
  let cuts = 0;
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    let sent = 0;
    let uploadPath: string | undefined;
    let stalled = false;
    client.on('data', (chunk: Buffer) => {
      if (stalled) return;
      if (sent === 0) uploadPath = /^PUT (\/be\/v1\/uploads\/\S+) HTTP/.exec(chunk.toString('latin1', 0, 300))?.[1];
      sent += chunk.length;
      if (opts.stallUploadAfter !== undefined && stalls === 0 && uploadPath !== undefined && sent > opts.stallUploadAfter) {
        stalls += 1;
        stalled = true;
        client.pause();
        return;
      }
      if (opts.cutUploadAfter !== undefined && cuts === 0 && uploadPath !== undefined && sent > opts.cutUploadAfter) {
        cuts += 1;
        stalled = true;
        client.pause();
        void (async () => {
          for (let i = 0; i < 200; i++) {
            const st = (await (await fetch(new URL(uploadPath!, target)).catch(() => null))?.json().catch(() => null)) as any;
            if (st?.upload?.receivedBytes > 0) break;
            await new Promise((r) => setTimeout(r, 25));
          }
          client.destroy();
          upstream.destroy();
        })();
        return;
      }
      upstream.write(chunk);
      if (opts.uploadBytesPerSecond !== undefined && uploadPath !== undefined) {
        client.pause();
        setTimeout(() => client.resume(), (chunk.length / opts.uploadBytesPerSecond) * 1000);
      }
    });
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => proxy.listen(listenPort, '127.0.0.1', r));
  const { port } = proxy.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stalls: () => stalls,
    cuts: () => cuts,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => proxy.close(() => r()));
    },
  };
}

/** A loopback port that was free a moment ago (for a proxy the server's upload URLs must name). */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}
