// The console's upload (api/upload.ts) and folder packing (api/tar.ts) against the real server over
// real HTTP: a tar packed as the browser packs a folder, a PUT cut off halfway, the resume at the
// offset the server names, and the exact bytes arriving (dltar's sha256). And packTar read by real tar.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../../../server/src/test-support/test-server.js';
import { createOrg, loginAdmin, type Session } from '../../../server/src/test-support/factories.js';
import { createApp } from '../../../server/src/test-support/imports.js';
import { packTar, type TarInput } from './tar';
import { fetchUploadStatus, uploadResumable, type PutAnswer, type PutRequest } from './upload';

const MIB = 1024 * 1024;

/** Deterministic, incompressible-ish bytes. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    out[i] = x & 0xff;
  }
  return out;
}

const files = (): TarInput[] => [
  { path: 'game/data/level1.pak', blob: new Blob([bytes(7 * MIB, 1) as BlobPart]), lastModified: 1_700_000_000_000 },
  { path: 'game/data/level2.pak', blob: new Blob([bytes(6 * MIB, 2) as BlobPart]), lastModified: 1_700_000_000_000 },
  { path: `game/${'long_folder_name_'.repeat(8)}/readme.txt`, blob: new Blob(['hello\n']), lastModified: 1_700_000_000_000 },
  { path: 'game/start.exe', blob: new Blob([bytes(4096, 3) as BlobPart]), lastModified: 1_700_000_000_000 },
];

describe('packTar (what the browser uploads for a folder)', () => {
  it('is a tar that real tar lists and extracts byte for byte, long names included', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'console-tar-'));
    try {
      const tar = Buffer.from(await packTar(files()).arrayBuffer());
      expect(tar.length % 512).toBe(0);
      fs.writeFileSync(path.join(dir, 'b.tar'), tar);
      const listing = execFileSync('tar', ['-tf', path.join(dir, 'b.tar')], { encoding: 'utf8' }).trim().split('\n');
      expect(listing).toEqual(expect.arrayContaining(['game/', 'game/data/', 'game/data/level1.pak', `game/${'long_folder_name_'.repeat(8)}/readme.txt`, 'game/start.exe']));
      fs.mkdirSync(path.join(dir, 'x'));
      execFileSync('tar', ['-xf', path.join(dir, 'b.tar'), '-C', path.join(dir, 'x')]);
      for (const f of files()) {
        const got = fs.readFileSync(path.join(dir, 'x', f.path));
        expect(Buffer.compare(got, Buffer.from(await f.blob.arrayBuffer())), f.path).toBe(0);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('drops ".." and "." segments rather than writing outside the folder', async () => {
    const tar = Buffer.from(await packTar([{ path: '../../etc/x/./y.txt', blob: new Blob(['y']), lastModified: 0 }]).arrayBuffer());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'console-tar-'));
    try {
      fs.writeFileSync(path.join(dir, 'b.tar'), tar);
      expect(execFileSync('tar', ['-tf', path.join(dir, 'b.tar')], { encoding: 'utf8' }).trim().split('\n')).toEqual(['etc/', 'etc/x/', 'etc/x/y.txt']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

interface Sent {
  range: string | null;
  size: number;
}

/**
 * A transport over node:http (the browser's is XMLHttpRequest). The first PUT is cut off: it sends
 * `cutAfter` bytes, waits until the server stored a part, then drops the connection.
 */
function cuttingTransport(sent: Sent[], cutAfter: number, storedAtLeast: number, cutFirst = true) {
  let cut = !cutFirst;
  return async (req: PutRequest): Promise<PutAnswer> => {
    const body = Buffer.from(await req.body.arrayBuffer());
    sent.push({ range: req.headers['content-range'] ?? null, size: body.length });
    return new Promise<PutAnswer>((resolve) => {
      const r = http.request(req.url, { method: 'PUT', headers: { ...req.headers, 'content-length': String(body.length) } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (s: string) => (text += s)).on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
      });
      r.on('error', () => resolve({ status: 0, body: null }));
      if (cut) {
        r.on('drain', () => req.onProgress(body.length));
        r.end(body);
        return;
      }
      cut = true;
      r.write(body.subarray(0, cutAfter));
      const deadline = Date.now() + 20_000;
      const poll = async () => {
        const st = await fetchUploadStatus(req.url).catch(() => null);
        if ((st && st.receivedBytes >= storedAtLeast) || Date.now() > deadline) r.destroy();
        else setTimeout(poll, 50);
      };
      void poll();
    });
  };
}

describe.each(TEST_DIALECTS)('uploadResumable against the real server (%s)', (dialect) => {
  let t: TestServer;
  let admin: Session;
  let appName: string;
  beforeAll(async () => {
    t = await createTestServer({ dialect, env: { ROCKIT_UPLOAD_STALL_SECONDS: '1' } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const org = await createOrg(t);
    admin = await loginAdmin(t, org);
    appName = (await createApp(t, org)).name;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('resumes a broken PUT at the offset the server names, and the exact tar arrives', async () => {
    const blob = packTar(files());
    const tar = Buffer.from(await blob.arrayBuffer());
    const sub = await t.req('POST', '/be/v1/builds', { headers: admin.headers, body: { appName, size: blob.size } });
    expect(sub.statusCode, sub.body).toBe(202);
    const { task, upload } = sub.json();
    const sent: Sent[] = [];
    const resumes: number[] = [];
    const progress: number[] = [];
    const answer = await uploadResumable({
      url: upload.url,
      blob,
      transport: cuttingTransport(sent, 12 * MIB, 8 * MIB),
      sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 300))),
      onResume: (from) => resumes.push(from),
      onProgress: (b) => progress.push(b),
    });
    expect(answer.upload).toMatchObject({ state: 'received', receivedBytes: blob.size });
    // The first PUT was whole; each later one starts where the server said it stands (a whole 8 MiB part).
    expect(sent[0]).toEqual({ range: null, size: blob.size });
    expect(resumes.length).toBeGreaterThanOrEqual(1);
    expect(resumes[0]).toBe(8 * MIB);
    const last = sent[sent.length - 1]!;
    expect(last).toEqual({ range: `bytes ${8 * MIB}-${blob.size - 1}/${blob.size}`, size: blob.size - 8 * MIB });
    expect(progress[progress.length - 1]).toBe(blob.size);
    // dltar hashes what arrived: byte for byte the packed tar.
    let dltar: any;
    for (let i = 0; i < 400; i++) {
      dltar = (await t.req('GET', `/be/v1/tasks/${task.name}`, { headers: admin.headers })).json().task;
      if (dltar.status !== 'submitted' && dltar.status !== 'running') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(dltar.status, JSON.stringify(dltar.error)).toBe('succeeded');
    expect(dltar.result).toMatchObject({ sizeBytes: tar.length, sha256: createHash('sha256').update(tar).digest('hex') });
  }, 120_000);

  it('gives up at once on an answer no resume can change (an expired upload), without resuming', async () => {
    const blob = new Blob([bytes(1000, 9) as BlobPart]);
    const sub = (await t.req('POST', '/be/v1/builds', { headers: admin.headers, body: { appName, size: 1000 } })).json();
    const exp = await t.req('PATCH', '/be/v1/tasks', { headers: admin.headers, body: { name: sub.task.name, expire: true } });
    expect(exp.statusCode, exp.body).toBe(200);
    const resumes: number[] = [];
    const sent: Sent[] = [];
    await expect(uploadResumable({ url: sub.upload.url, blob, transport: cuttingTransport(sent, 0, 0, false), onResume: (f) => resumes.push(f), sleep: async () => {} }))
      .rejects.toMatchObject({ name: 'UploadError', status: 409 });
    expect(resumes).toEqual([]);
    expect(sent).toHaveLength(1);
  });
});
