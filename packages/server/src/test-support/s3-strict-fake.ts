/**
 * A small, strict S3 protocol fake for the multipart calls s3rver does not implement
 * (ListMultipartUploads, AbortMultipartUpload) or implements loosely (UploadPart accepts any upload id,
 * CompleteMultipartUpload ignores ETags). No Debian package ships an S3-compatible server that CI could
 * install (checked: no python3-moto, minio or seaweedfs in Debian 12; radosgw needs a Ceph cluster), so
 * the multipart contract runs against this fake as well as against s3rver.
 *
 * It answers path-style requests as S3 documents them (status codes, XML bodies, error codes
 * NoSuchUpload, InvalidPart, InvalidPartOrder, EntityTooSmall, MalformedXML, NoSuchKey, InvalidRange),
 * keeps objects and uploads in memory, and is strict: a request it does not recognise, a request
 * without SigV4 credentials of its access key, or a parameter that an operation does not take is
 * answered 501/403/400 and recorded in `unexpected()`, which a test asserts to be empty.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StrictS3Fake {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Requests the fake refused as not S3 (or not what our store should send), `METHOD path?query: why`. */
  unexpected(): string[];
  /** Every request, `OPERATION key` in arrival order. */
  calls(): string[];
  stop(): Promise<void>;
}

interface Upload {
  key: string;
  uploadId: string;
  initiated: Date;
  parts: Map<number, { etag: string; body: Buffer }>;
}

const MIN_PART_BYTES = 5 * 1024 * 1024;
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
const unesc = (s: string): string => s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const md5 = (b: Buffer): string => `"${createHash('md5').update(b).digest('hex')}"`;
const XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>';
const NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"';

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function startStrictS3Fake(options: { buckets: string[] }): Promise<StrictS3Fake> {
  const accessKeyId = 'STRICTFAKE';
  const secretAccessKey = 'strict-fake-secret';
  const region = 'us-east-1';
  const buckets = new Set(options.buckets);
  const objects = new Map<string, { body: Buffer; etag: string; modified: Date }>(); // `bucket/key`
  const uploads = new Map<string, Upload & { bucket: string }>(); // uploadId
  const unexpected: string[] = [];
  const calls: string[] = [];

  const send = (res: ServerResponse, status: number, xml?: string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { ...(xml !== undefined ? { 'content-type': 'application/xml' } : {}), ...headers });
    res.end(xml !== undefined ? XML_HEAD + xml : undefined);
  };
  const error = (res: ServerResponse, status: number, code: string, message: string): void =>
    send(res, status, `<Error><Code>${code}</Code><Message>${esc(message)}</Message></Error>`);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const q = url.searchParams;
    const what = `${req.method} ${url.pathname}${url.search}`;
    const refuse = (status: number, code: string, why: string): void => {
      unexpected.push(`${what}: ${why}`);
      error(res, status, code, why);
    };
    // Only the SigV4 header with this fake's access key (the SDK signs every request so).
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith(`AWS4-HMAC-SHA256 Credential=${accessKeyId}/`) || !req.headers['x-amz-date']) {
      return refuse(403, 'AccessDenied', 'no SigV4 authorization with the fake\'s access key');
    }
    const body = await readBody(req);
    const [, bucket = '', ...rest] = url.pathname.split('/');
    const key = rest.map((s) => decodeURIComponent(s)).join('/');
    if (!buckets.has(bucket)) return error(res, 404, 'NoSuchBucket', `no bucket ${bucket}`);
    const params = [...q.keys()].filter((k) => k !== 'x-id');
    const only = (...allowed: string[]): boolean => {
      const extra = params.filter((p) => !allowed.includes(p));
      if (extra.length > 0) refuse(400, 'InvalidArgument', `parameters this operation does not take: ${extra.join(', ')}`);
      return extra.length === 0;
    };
    const upload = (): (Upload & { bucket: string }) | undefined => {
      const u = uploads.get(q.get('uploadId') ?? '');
      return u && u.bucket === bucket && u.key === key ? u : undefined;
    };

    if (key === '') {
      if (req.method === 'GET' && q.has('uploads')) {
        calls.push('ListMultipartUploads');
        if (!only('uploads', 'prefix', 'max-uploads', 'key-marker', 'upload-id-marker', 'encoding-type')) return;
        const prefix = q.get('prefix') ?? '';
        const max = Number(q.get('max-uploads') ?? '1000');
        if (!Number.isInteger(max) || max < 1) return refuse(400, 'InvalidArgument', 'max-uploads must be a positive integer');
        const keyMarker = q.get('key-marker');
        const idMarker = q.get('upload-id-marker');
        if (idMarker !== null && keyMarker === null) return refuse(400, 'InvalidArgument', 'upload-id-marker without key-marker');
        const all = [...uploads.values()]
          .filter((u) => u.bucket === bucket && u.key.startsWith(prefix))
          .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.initiated.getTime() - b.initiated.getTime() || (a.uploadId < b.uploadId ? -1 : 1)));
        let start = 0;
        if (keyMarker !== null) {
          const at = idMarker !== null ? all.findIndex((u) => u.key === keyMarker && u.uploadId === idMarker) : -1;
          start = at >= 0 ? at + 1 : all.findIndex((u) => u.key > keyMarker);
          if (start < 0) start = all.length;
        }
        const page = all.slice(start, start + max);
        const truncated = start + max < all.length;
        const last = page[page.length - 1];
        return send(
          res,
          200,
          `<ListMultipartUploadsResult ${NS}><Bucket>${esc(bucket)}</Bucket><Prefix>${esc(prefix)}</Prefix><MaxUploads>${max}</MaxUploads><IsTruncated>${truncated}</IsTruncated>` +
            (truncated && last ? `<NextKeyMarker>${esc(last.key)}</NextKeyMarker><NextUploadIdMarker>${esc(last.uploadId)}</NextUploadIdMarker>` : '') +
            page.map((u) => `<Upload><Key>${esc(u.key)}</Key><UploadId>${esc(u.uploadId)}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`).join('') +
            '</ListMultipartUploadsResult>',
        );
      }
      if (req.method === 'GET' && q.get('list-type') === '2') {
        calls.push('ListObjectsV2');
        if (!only('list-type', 'prefix', 'max-keys', 'continuation-token', 'start-after', 'encoding-type', 'fetch-owner')) return;
        const prefix = q.get('prefix') ?? '';
        const max = Number(q.get('max-keys') ?? '1000');
        const token = q.get('continuation-token');
        const after = token !== null ? Buffer.from(token, 'base64url').toString('utf8') : (q.get('start-after') ?? '');
        const keys = [...objects.keys()]
          .filter((k) => k.startsWith(`${bucket}/`))
          .map((k) => k.slice(bucket.length + 1))
          .filter((k) => k.startsWith(prefix) && k > after)
          .sort();
        const page = keys.slice(0, max);
        const truncated = keys.length > max;
        return send(
          res,
          200,
          `<ListBucketResult ${NS}><Name>${esc(bucket)}</Name><Prefix>${esc(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${max}</MaxKeys><IsTruncated>${truncated}</IsTruncated>` +
            (truncated ? `<NextContinuationToken>${Buffer.from(page[page.length - 1]!).toString('base64url')}</NextContinuationToken>` : '') +
            page
              .map((k) => {
                const o = objects.get(`${bucket}/${k}`)!;
                return `<Contents><Key>${esc(k)}</Key><LastModified>${o.modified.toISOString()}</LastModified><ETag>${esc(o.etag)}</ETag><Size>${o.body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
              })
              .join('') +
            '</ListBucketResult>',
        );
      }
      if (req.method === 'POST' && q.has('delete')) {
        calls.push('DeleteObjects');
        if (!only('delete')) return;
        const keys = [...body.toString('utf8').matchAll(/<Key>([\s\S]*?)<\/Key>/g)].map((m) => unesc(m[1]!));
        for (const k of keys) objects.delete(`${bucket}/${k}`);
        return send(res, 200, `<DeleteResult ${NS}>${keys.map((k) => `<Deleted><Key>${esc(k)}</Key></Deleted>`).join('')}</DeleteResult>`);
      }
      return refuse(501, 'NotImplemented', 'bucket operation not implemented by the fake');
    }

    if (req.method === 'POST' && q.has('uploads')) {
      calls.push(`CreateMultipartUpload ${key}`);
      if (!only('uploads')) return;
      const uploadId = randomBytes(16).toString('base64url');
      uploads.set(uploadId, { bucket, key, uploadId, initiated: new Date(), parts: new Map() });
      return send(res, 200, `<InitiateMultipartUploadResult ${NS}><Bucket>${esc(bucket)}</Bucket><Key>${esc(key)}</Key><UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`);
    }
    if (req.method === 'PUT' && q.has('uploadId')) {
      calls.push(`UploadPart ${key}`);
      if (!only('uploadId', 'partNumber')) return;
      const n = Number(q.get('partNumber'));
      if (!Number.isInteger(n) || n < 1 || n > 10_000) return refuse(400, 'InvalidArgument', 'partNumber must be an integer in 1..10000');
      const u = upload();
      if (!u) return error(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
      const etag = md5(body);
      u.parts.set(n, { etag, body });
      return send(res, 200, undefined, { etag });
    }
    if (req.method === 'POST' && q.has('uploadId')) {
      calls.push(`CompleteMultipartUpload ${key}`);
      if (!only('uploadId')) return;
      const u = upload();
      if (!u) return error(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
      const xml = body.toString('utf8');
      const listed = [...xml.matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => ({
        partNumber: Number(/<PartNumber>(\d+)<\/PartNumber>/.exec(m[1]!)?.[1]),
        etag: unesc(/<ETag>([\s\S]*?)<\/ETag>/.exec(m[1]!)?.[1] ?? ''),
      }));
      if (!xml.includes('<CompleteMultipartUpload') || listed.length === 0) return error(res, 400, 'MalformedXML', 'The XML you provided was not well-formed.');
      for (let i = 1; i < listed.length; i++) {
        if (!(listed[i]!.partNumber > listed[i - 1]!.partNumber)) return error(res, 400, 'InvalidPartOrder', 'The list of parts was not in ascending order.');
      }
      const bodies: Buffer[] = [];
      for (const [i, p] of listed.entries()) {
        const stored = u.parts.get(p.partNumber);
        if (!stored || stored.etag !== p.etag) return error(res, 400, 'InvalidPart', 'One or more of the specified parts could not be found.');
        if (i < listed.length - 1 && stored.body.length < MIN_PART_BYTES) return error(res, 400, 'EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.');
        bodies.push(stored.body);
      }
      const whole = Buffer.concat(bodies);
      const etag = `"${createHash('md5').update(Buffer.concat(listed.map((p) => Buffer.from(p.etag.replace(/"/g, ''), 'hex')))).digest('hex')}-${listed.length}"`;
      objects.set(`${bucket}/${key}`, { body: whole, etag, modified: new Date() });
      uploads.delete(u.uploadId);
      return send(res, 200, `<CompleteMultipartUploadResult ${NS}><Bucket>${esc(bucket)}</Bucket><Key>${esc(key)}</Key><ETag>${esc(etag)}</ETag></CompleteMultipartUploadResult>`);
    }
    if (req.method === 'DELETE' && q.has('uploadId')) {
      calls.push(`AbortMultipartUpload ${key}`);
      if (!only('uploadId')) return;
      const u = upload();
      if (!u) return error(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
      uploads.delete(u.uploadId);
      return send(res, 204);
    }
    if (req.method === 'PUT') {
      calls.push(`PutObject ${key}`);
      if (req.headers['x-amz-copy-source']) return refuse(501, 'NotImplemented', 'CopyObject is not implemented by the fake');
      if (!only()) return;
      const etag = md5(body);
      objects.set(`${bucket}/${key}`, { body, etag, modified: new Date() });
      return send(res, 200, undefined, { etag });
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      calls.push(`${req.method === 'GET' ? 'GetObject' : 'HeadObject'} ${key}`);
      if (!only()) return;
      const o = objects.get(`${bucket}/${key}`);
      if (!o) return req.method === 'HEAD' ? send(res, 404) : error(res, 404, 'NoSuchKey', 'The specified key does not exist.');
      const range = req.headers.range;
      const headers = { etag: o.etag, 'last-modified': o.modified.toUTCString(), 'accept-ranges': 'bytes' };
      if (range === undefined || req.method === 'HEAD') {
        res.writeHead(200, { ...headers, 'content-length': String(o.body.length) });
        res.end(req.method === 'HEAD' ? undefined : o.body);
        return;
      }
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!m) return refuse(400, 'InvalidArgument', `range header S3 does not take: ${range}`);
      const start = Number(m[1]);
      const end = Math.min(m[2] === '' ? o.body.length - 1 : Number(m[2]), o.body.length - 1);
      if (start >= o.body.length || end < start) return error(res, 416, 'InvalidRange', 'The requested range is not satisfiable');
      res.writeHead(206, { ...headers, 'content-length': String(end - start + 1), 'content-range': `bytes ${start}-${end}/${o.body.length}` });
      res.end(o.body.subarray(start, end + 1));
      return;
    }
    if (req.method === 'DELETE') {
      calls.push(`DeleteObject ${key}`);
      if (!only()) return;
      objects.delete(`${bucket}/${key}`);
      return send(res, 204);
    }
    return refuse(501, 'NotImplemented', 'object operation not implemented by the fake');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      unexpected.push(`${req.method} ${req.url}: fake failed: ${String(err)}`);
      if (!res.headersSent) error(res, 500, 'InternalError', 'the fake failed');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    region,
    accessKeyId,
    secretAccessKey,
    unexpected: () => [...unexpected],
    calls: () => [...calls],
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
