// The resumable upload of a build from the browser (api.md §7.2 and the server's "Resumable uploads"):
// PUT the tar to the upload URL; after a broken connection (or a server error) ask the URL how much
// it holds (GET → receivedBytes) and PUT the rest with `Content-Range: bytes first-last/total`.

export interface PutRequest {
  url: string;
  body: Blob;
  headers: Record<string, string>;
  /** Bytes of this body sent so far. */
  onProgress: (sent: number) => void;
  signal?: AbortSignal;
}

export interface PutAnswer {
  /** HTTP status; 0 when the connection broke. */
  status: number;
  body: any;
}

export type Transport = (req: PutRequest) => Promise<PutAnswer>;

/** The browser's transport: XMLHttpRequest, for its upload progress events. */
export const xhrTransport: Transport = (req) =>
  new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', req.url);
    for (const [k, v] of Object.entries(req.headers)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => req.onProgress(e.loaded);
    const done = () => {
      let body: any = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        body = null;
      }
      resolve({ status: xhr.status, body });
    };
    xhr.onload = done;
    xhr.onerror = () => resolve({ status: 0, body: null });
    xhr.onabort = () => resolve({ status: 0, body: { aborted: true } });
    req.signal?.addEventListener('abort', () => xhr.abort());
    xhr.send(req.body);
  });

export interface UploadStatus {
  state: 'waiting' | 'received' | 'expired';
  receivedBytes: number;
}

export class UploadError extends Error {
  override readonly name = 'UploadError';
  constructor(message: string, readonly status: number, readonly body: any) {
    super(message);
  }
}

export interface ResumableOptions {
  url: string;
  blob: Blob;
  transport?: Transport;
  /** Asks the upload URL how much it holds. Default: fetch GET. */
  status?: (url: string) => Promise<UploadStatus>;
  onProgress?: (bytes: number, total: number) => void;
  onResume?: (fromBytes: number, reason: string) => void;
  maxResumes?: number;
  sleep?: (ms: number) => Promise<void>;
  signal?: AbortSignal;
}

export async function fetchUploadStatus(url: string): Promise<UploadStatus> {
  const res = await fetch(url, { headers: { accept: 'application/json' } });
  const body = await res.json().catch(() => null);
  if (!res.ok || !body?.upload) throw new UploadError(body?.message ?? `the upload URL answered HTTP ${res.status}`, res.status, body);
  return body.upload as UploadStatus;
}

function resumable(a: PutAnswer): boolean {
  if (a.status === 0 || a.status >= 500) return true;
  const e = a.body?.error;
  return (e === 'invalid-param' && a.body?.param === 'body') || (e === 'invalid-state' && typeof a.body?.receivedBytes === 'number');
}

/** Uploads `blob`; resolves with the server's final answer (`{ task, upload }`), throws UploadError when it cannot. */
export async function uploadResumable(opts: ResumableOptions): Promise<any> {
  const transport = opts.transport ?? xhrTransport;
  const status = opts.status ?? fetchUploadStatus;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const total = opts.blob.size;
  const maxResumes = opts.maxResumes ?? 8;
  let offset = 0;
  let tries = 0;
  for (;;) {
    const from = offset;
    const headers: Record<string, string> = { 'content-type': 'application/x-tar' };
    if (from > 0) headers['content-range'] = `bytes ${from}-${total - 1}/${total}`;
    const answer = await transport({
      url: opts.url,
      body: opts.blob.slice(from),
      headers,
      onProgress: (sent) => opts.onProgress?.(from + sent, total),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (opts.signal?.aborted) throw new UploadError('upload canceled', 0, null);
    if (answer.status >= 200 && answer.status < 300) {
      const u = answer.body?.upload as UploadStatus | undefined;
      if (!u || u.state === 'received') {
        opts.onProgress?.(total, total);
        return answer.body;
      }
    } else if (!resumable(answer)) {
      throw new UploadError(answer.body?.message ?? `the upload answered HTTP ${answer.status}`, answer.status, answer.body);
    }
    const reason = answer.status === 0 ? 'the connection broke' : (answer.body?.message ?? `HTTP ${answer.status}`);
    // Where does the server stand? Asked again (with growing pauses) while it cannot answer.
    let st: UploadStatus | null = null;
    while (st === null) {
      if (tries >= maxResumes) throw new UploadError(`the upload stalled: ${reason} (gave up after ${tries} tries)`, answer.status, answer.body);
      tries += 1;
      await sleep(Math.min(15_000, 500 * 2 ** (tries - 1)));
      st = await status(opts.url).catch((e) => {
        if (e instanceof UploadError && e.status > 0 && e.status < 500) throw e;
        return null;
      });
    }
    if (st.state === 'received') {
      opts.onProgress?.(total, total);
      return { upload: st };
    }
    if (st.state !== 'waiting') throw new UploadError(`the upload is ${st.state}`, 409, st);
    offset = st.receivedBytes;
    opts.onResume?.(offset, reason);
  }
}
