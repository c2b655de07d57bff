import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { ImportRow } from '../db/import-tables.js';
import {
  claimUploadWriter,
  findImport,
  holdsUpload,
  isUploadInUse,
  markUploadReceived,
  releaseUploadWriter,
  updateUploadAsWriter,
} from '../db/repositories/import.repository.js';
import { toUnixSeconds } from '../domain/clock.js';
import { AppError, invalidParam, notFound } from '../domain/errors.js';
import { constantTimeEqual, sha256Hex } from '../domain/secrets.js';
import { sniffTar, type TarCompression } from '@rockit/engine';
import { IMPORTS_PREFIX, isImportDeltaKey } from '../publish/layout.js';
import { findTask, releaseSubmittedTask, setSubmittedProgress } from '../queue/tasks.queue.js';
import { MAX_MULTIPART_PARTS, type BlobStore, type StoredPart } from '../storage/blob-store.js';
import { PartWriter } from '../storage/part-writer.js';
import type { EarlyBuilds, EarlyFeed } from '../pipeline/early-build.js';
import type { ServiceDeps } from './context.js';
import type { TaskDto, UploadStatusDto } from '@rockit/contract';
import { toTaskDto } from './mappers.js';
import type { TaskQueue } from '../queue/task-queue.js';

/** The headers of a PUT that matter here. */
export interface UploadRequest {
  contentLength?: number;
  /**
   * `bytes first-last/total`: a piece; the probe form with `*` in place of `first-last` and no
   * body: completes the upload if every byte is there; absent: the whole tar, from byte 0.
   */
  contentRange?: string;
}

export interface UploadServiceOptions {
  blobStore: BlobStore;
  maxUploadBytes: number;
  /** How long a PUT holds the upload without showing progress; a dead server's PUT is taken over after this. */
  writerLeaseMs: number;
  /**
   * A PUT whose body brings no byte for this long is ended (its connection closed; what it stored
   * in whole parts stays), so a half-open connection does not hold the upload (ROCKIT_UPLOAD_IDLE_SECONDS).
   */
  idleMs?: number;
  /**
   * A piece at the right offset takes the upload over from a PUT that has shown no progress for
   * this long (ROCKIT_UPLOAD_STALL_SECONDS): the client that gave up on a stalled connection resumes at once.
   */
  stallMs?: number;
  /** Where a whole-tar PUT's bytes also go as they arrive: the image is built while the upload runs (absent: not). */
  earlyBuilds?: EarlyBuilds;
  /** The task queue: the released dltar task wakes the local worker once committed. */
  queue: TaskQueue;
}

const MIB = 1024 * 1024;
/** Default part size; larger when the tar (or, unannounced, the upload limit) needs more than S3's parts allow. */
const DEFAULT_PART_BYTES = 8 * MIB;
const PARTS_TARGET = MAX_MULTIPART_PARTS - 1000;

/** Parsed Content-Range of an upload PUT. */
type Piece =
  | { kind: 'whole'; total: number | undefined }
  | { kind: 'range'; first: number; last: number; total: number }
  | { kind: 'probe'; total: number };

/**
 * Receives uploads of native builds (api.md §7.2: streamed to the blob store, never held whole in
 * memory, resumable via multipart). A PUT's body is cut into parts of the blob store's multipart
 * put; each stored part is recorded on the import before the next, so whatever the server holds is
 * known to every API node: after a broken connection or a dead node, the client asks how much
 * arrived (`status`) and PUTs the rest with `Content-Range`, to any node. One PUT writes at a time
 * (a lease on the import, renewed while bytes flow). The last part completes the object and
 * releases the dltar task.
 */
export class UploadService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly opts: UploadServiceOptions,
  ) {}

  /** How much of the upload the server holds. Errors: not-found (unknown task or wrong token). */
  async status(taskName: string, token: string): Promise<UploadStatusDto> {
    return toStatus(await this.authorize(taskName, token));
  }

  /**
   * One PUT of the upload URL. Without Content-Range the body is the whole tar (earlier stored
   * bytes are discarded); with `bytes first-last/total` it continues at `first`, which must equal
   * what the server holds. A piece that does not end the tar may keep fewer bytes than it carried
   * (a tail shorter than a part is dropped): the answer's `receivedBytes` says where to go on.
   * The piece that ends the tar completes it and starts the pipeline.
   *
   * Errors: not-found; token-expired; invalid-state (upload already complete or expired, another
   * PUT writing, `first` not at `receivedBytes` — the answer carries `receivedBytes`);
   * invalid-param (`content-range` malformed or inconsistent; `body` when the connection broke —
   * what arrived in whole parts is kept); payload-too-large.
   */
  async receive(taskName: string, token: string, body: Readable, request: UploadRequest): Promise<{ task: TaskDto; upload: UploadStatusDto }> {
    const { db, clock } = this.deps;
    let imp = await this.authorize(taskName, token);
    if (imp.upload_state !== 'waiting') {
      throw new AppError('invalid-state', `upload of task ${taskName} is ${imp.upload_state}`, { task: taskName });
    }
    if (clock.now() >= Number(imp.expires_ms)) throw new AppError('token-expired', 'the upload URL has expired', { task: taskName });
    const piece = parsePiece(request);
    const max = this.opts.maxUploadBytes;
    if ((piece.total ?? 0) > max || (request.contentLength ?? 0) > max) throw tooLarge(max);
    const continuing = piece.kind === 'probe' || (piece.kind === 'range' && piece.first > 0);
    if (continuing && imp.upload_total_bytes !== null && Number(imp.upload_total_bytes) !== piece.total) {
      throw invalidParam('content-range', `the total ${piece.total} differs from the ${imp.upload_total_bytes} bytes announced before`);
    }

    const writer = randomBytes(9).toString('base64url');
    const offset = piece.kind === 'whole' ? undefined : piece.kind === 'range' ? piece.first : Number(imp.upload_received_bytes);
    const leaseMs = this.opts.writerLeaseMs;
    const stallMs = this.opts.stallMs === undefined ? undefined : Math.min(this.opts.stallMs, leaseMs);
    if (!(await claimUploadWriter(db, taskName, writer, clock.now(), leaseMs, offset, stallMs))) {
      const now = await findImport(db, taskName);
      throw this.whyNotClaimed(taskName, now, offset);
    }
    // The lease runs from the last progress, not from the last tick: a byte in, a part stored, or
    // any moment this PUT is not waiting for the client's bytes (storing a part, completing the
    // object). So only a PUT whose client went silent stalls: its lease lapses, and `until - lease`
    // tells other nodes since when it has stalled.
    const progress: Progress = { lastMs: clock.now(), renewedMs: clock.now(), waiting: false };
    const tickMs = Math.max(250, Math.min(Math.floor(leaseMs / 3), stallMs === undefined ? leaseMs : Math.floor(stallMs / 3)));
    const keepAlive = setInterval(() => {
      if (!progress.waiting) progress.lastMs = clock.now();
      if (progress.lastMs === progress.renewedMs) return;
      progress.renewedMs = progress.lastMs;
      void updateUploadAsWriter(db, taskName, writer, { upload_writer_until_ms: progress.lastMs + leaseMs }).catch(() => undefined);
    }, tickMs);
    try {
      imp = (await findImport(db, taskName)) ?? imp;
      if (piece.kind === 'probe') {
        body.resume();
        if (Number(imp.upload_received_bytes) === piece.total) await this.complete(imp, writer, this.partsOf(imp));
      } else {
        await this.receiveBody(imp, writer, piece, body, progress);
      }
    } finally {
      clearInterval(keepAlive);
      await releaseUploadWriter(db, taskName, writer).catch(() => undefined);
    }
    const after = await findImport(db, taskName);
    const task = await findTask(db, taskName);
    if (!after || !task) throw notFound('task', taskName);
    return { task: toTaskDto(task), upload: toStatus(after) };
  }

  /**
   * Housekeeping: aborts the blob store's multipart uploads under `imports/` that started before
   * `startedBeforeMs` and that no waiting upload uses (a server died between starting one and
   * recording it, or the import row is gone). Returns how many were aborted; a store that cannot
   * list them (the S3 test server) sweeps nothing.
   */
  async sweepOrphans(startedBeforeMs: number): Promise<number> {
    const store = this.opts.blobStore;
    const stale: Array<{ key: string; uploadId: string }> = [];
    try {
      for await (const u of store.listMultipart()) {
        if (u.startedMs < startedBeforeMs && u.key.startsWith(IMPORTS_PREFIX)) stale.push(u);
      }
    } catch {
      return 0;
    }
    let aborted = 0;
    for (const u of stale) {
      if (await isUploadInUse(this.deps.db, u.uploadId)) continue;
      await store.abortMultipart(u.key, u.uploadId).catch(() => undefined);
      aborted += 1;
    }
    return aborted;
  }

  private async authorize(taskName: string, token: string): Promise<ImportRow> {
    const imp = await findImport(this.deps.db, taskName);
    if (!imp || imp.upload_token_hash === null || !constantTimeEqual(sha256Hex(token), imp.upload_token_hash)) {
      throw notFound('upload', taskName);
    }
    return imp;
  }

  private whyNotClaimed(taskName: string, imp: ImportRow | undefined, offset: number | undefined): AppError {
    if (!imp || imp.upload_state !== 'waiting') {
      return new AppError('invalid-state', `upload of task ${taskName} is ${imp?.upload_state ?? 'gone'}`, { task: taskName });
    }
    const receivedBytes = Number(imp.upload_received_bytes);
    if (offset !== undefined && offset !== receivedBytes) {
      return new AppError('invalid-state', `the server holds ${receivedBytes} bytes of this upload: continue with Content-Range: bytes ${receivedBytes}-…`, {
        task: taskName, receivedBytes,
      });
    }
    return new AppError('invalid-state', 'another PUT of this upload is in progress; retry when it has ended', { task: taskName, receivedBytes });
  }

  private partsOf(imp: ImportRow): StoredPart[] {
    return imp.upload_parts ? (JSON.parse(imp.upload_parts) as StoredPart[]) : [];
  }

  /** Streams the body into parts; completes the object when this piece ends the tar. */
  private async receiveBody(
    imp: ImportRow,
    writer: string,
    piece: Exclude<Piece, { kind: 'probe' }>,
    body: Readable,
    progress: Progress,
  ): Promise<void> {
    const { db } = this.deps;
    const store = this.opts.blobStore;
    const taskName = imp.task_name;
    const lost = (): AppError => new AppError('invalid-state', `the upload of task ${taskName} is no longer open`, { task: taskName });

    // A whole-tar PUT starts over; so does the first piece. Either way: a fresh multipart put.
    let uploadId = imp.upload_id;
    let parts = this.partsOf(imp);
    let partBytes = imp.upload_part_bytes === null ? null : Number(imp.upload_part_bytes);
    if (piece.kind === 'whole' || uploadId === null) {
      if (uploadId !== null) await store.abortMultipart(imp.tar_key, uploadId).catch(() => undefined);
      partBytes = choosePartBytes(piece.total ?? this.opts.maxUploadBytes);
      uploadId = await store.createMultipart(imp.tar_key, { contentType: 'application/x-tar' });
      parts = [];
      const ok = await updateUploadAsWriter(db, taskName, writer, {
        upload_id: uploadId, upload_parts: '[]', upload_part_bytes: partBytes, upload_received_bytes: 0, upload_total_bytes: piece.total ?? null,
      });
      if (!ok) {
        await store.abortMultipart(imp.tar_key, uploadId).catch(() => undefined);
        throw lost();
      }
    } else if (imp.upload_total_bytes === null) {
      await updateUploadAsWriter(db, taskName, writer, { upload_total_bytes: piece.total });
    }

    const start = parts.reduce((sum, p) => sum + p.sizeBytes, 0);
    // A PUT that starts at byte 0 sees every byte if it also ends the tar: hashed on the way in,
    // so dltar need not read the tar back (main-thread work the upload's I/O waits hide).
    const inbound = start === 0 ? new InboundDigest() : undefined;
    const total = piece.total ?? (imp.upload_total_bytes === null ? undefined : Number(imp.upload_total_bytes));
    const parts$ = new PartWriter({
      store, key: imp.tar_key, uploadId, partBytes: partBytes ?? choosePartBytes(total ?? this.opts.maxUploadBytes), parts,
      onPart: async (all, storedBytes) => {
        progress.lastMs = this.deps.clock.now();
        const ok = await updateUploadAsWriter(db, taskName, writer, {
          upload_parts: JSON.stringify(all), upload_received_bytes: storedBytes, upload_writer_until_ms: progress.lastMs + this.opts.writerLeaseMs,
        });
        if (!ok) throw lost();
        // While the tar arrives, the dltar task's progress is the fraction stored (when its size is known).
        if (total) await setSubmittedProgress(db, taskName, storedBytes / total, this.deps.clock.now());
      },
    });
    const expected = piece.kind === 'range' ? piece.last - piece.first + 1 : piece.total;
    // The whole tar from its first byte (not a delta): its image can be built as it arrives (pipeline/early-build.ts).
    const early = piece.kind === 'whole' && start === 0 && !isImportDeltaKey(imp.tar_key) ? this.opts.earlyBuilds?.start(taskName) : undefined;
    let fed = false;
    try {
      let seen: number;
      try {
        seen = await this.pump(body, parts$, { start, expected, taskName, inbound, early, writer, progress });
      } finally {
        // Never leave a part in flight behind a refusal: its record must land (or fail) first.
        await parts$.settle().catch(() => undefined);
      }
      if (expected !== undefined && seen < expected) {
        await this.keepTail(parts$, taskName, writer);
        throw brokeOff(taskName, parts$.storedBytes);
      }
      const endsTar = piece.kind === 'whole' || piece.last + 1 === piece.total;
      await parts$.flushTail({ last: endsTar });
      if (endsTar) {
        const digest = inbound?.result();
        await this.complete({ ...imp, upload_id: uploadId }, writer, parts$.parts, digest);
        if (early && digest) {
          early.finish(digest.sha256);
          fed = true;
        }
      }
    } finally {
      if (!fed) early?.abort();
    }
  }

  /**
   * Feeds the body into the part writer and returns the bytes it carried. A broken connection
   * keeps what can be kept (whole parts, and a tail long enough to be a part) and throws
   * `brokeOff`; a body over the limit or longer than announced is refused.
   */
  private async pump(
    body: Readable,
    parts$: PartWriter,
    ctx: {
      start: number; expected: number | undefined; taskName: string; inbound: InboundDigest | undefined; early: EarlyFeed | undefined;
      writer: string; progress: Progress;
    },
  ): Promise<number> {
    const max = this.opts.maxUploadBytes;
    const chunks = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    let seen = 0;
    // Idle timeout: counts only the time spent waiting for the client's bytes (not a slow store).
    // A body that brings nothing for that long is destroyed, which ends the wait below as a break.
    const idleMs = this.opts.idleMs;
    let waitingSince: number | undefined;
    const idleCheck = idleMs === undefined ? undefined : setInterval(() => {
      if (waitingSince !== undefined && Date.now() - waitingSince >= idleMs) {
        body.destroy(new Error(`no byte for ${Math.round(idleMs / 1000)} s`));
      }
    }, Math.max(100, Math.min(1000, Math.floor(idleMs / 4))));
    try {
      for (;;) {
        let next: IteratorResult<Buffer>;
        waitingSince = Date.now();
        ctx.progress.waiting = true;
        try {
          next = await chunks.next();
        } catch {
          ctx.progress.waiting = false;
          await this.keepTail(parts$, ctx.taskName, ctx.writer).catch(() => undefined);
          throw brokeOff(ctx.taskName, parts$.storedBytes);
        } finally {
          waitingSince = undefined;
          ctx.progress.waiting = false;
        }
        if (next.done) return seen;
        ctx.progress.lastMs = this.deps.clock.now();
        seen += next.value.length;
        if (ctx.start + seen > max) throw tooLarge(max);
        if (ctx.expected !== undefined && seen > ctx.expected) {
          throw invalidParam('content-range', `the body is longer than the ${ctx.expected} bytes announced`);
        }
        ctx.inbound?.update(next.value);
        await Promise.all([parts$.write(next.value), ctx.early?.write(next.value)]);
      }
    } finally {
      if (idleCheck) clearInterval(idleCheck);
    }
  }

  /**
   * After a break: stores the buffered tail when it can be a part — unless another PUT took the
   * upload over meanwhile (it writes the same part numbers; this writer must store nothing more).
   */
  private async keepTail(parts$: PartWriter, taskName: string, writer: string): Promise<void> {
    if (parts$.bufferedBytes > 0 && !(await holdsUpload(this.deps.db, taskName, writer))) return;
    await parts$.flushTail({ last: false });
  }

  /** Completes the multipart put and hands the upload to the pipeline (once, before the deadline). */
  private async complete(imp: ImportRow, writer: string, parts: StoredPart[], digest?: TarDigest): Promise<void> {
    const { clock } = this.deps;
    const store = this.opts.blobStore;
    const taskName = imp.task_name;
    if (imp.upload_id !== null) {
      try {
        await store.completeMultipart(imp.tar_key, imp.upload_id, parts);
      } catch (err) {
        // A completion that went through before a crash: the object is there, whole.
        const head = await store.head(imp.tar_key).catch(() => null);
        const size = parts.reduce((sum, p) => sum + p.sizeBytes, 0);
        if (head?.sizeBytes !== size) throw err;
      }
    }
    const now = clock.now();
    const released = await this.opts.queue.transaction(async (trx) => {
      if (!(await markUploadReceived(trx, taskName, writer, now, digest))) return false;
      return releaseSubmittedTask(trx, taskName, now);
    });
    if (!released) {
      await store.delete(imp.tar_key).catch(() => undefined);
      throw new AppError('invalid-state', `the upload of task ${taskName} is no longer open`, { task: taskName });
    }
  }
}

type TarDigest = { sha256: string; compression: TarCompression };

/** A PUT's progress: when it last moved, when that was written to its lease, whether it waits for the client now. */
interface Progress {
  lastMs: number;
  renewedMs: number;
  waiting: boolean;
}

/** SHA-256 of the bytes seen and, from the first 512, whether they start a tar (and how it is compressed). */
class InboundDigest {
  private readonly hash = createHash('sha256');
  private head: Buffer[] = [];
  private headBytes = 0;

  update(chunk: Buffer): void {
    this.hash.update(chunk);
    if (this.headBytes < TAR_HEAD_BYTES) {
      this.head.push(chunk.subarray(0, TAR_HEAD_BYTES - this.headBytes));
      this.headBytes += Math.min(chunk.length, TAR_HEAD_BYTES - this.headBytes);
    }
  }

  /** The digest, or undefined when the bytes do not look like a tar (dltar then reads them and says why). */
  result(): TarDigest | undefined {
    const verdict = sniffTar(Buffer.concat(this.head));
    if (!('compression' in verdict)) return undefined;
    return { sha256: this.hash.digest('hex'), compression: verdict.compression };
  }
}

const TAR_HEAD_BYTES = 512;

function toStatus(imp: ImportRow): UploadStatusDto {
  return {
    taskName: imp.task_name,
    state: imp.upload_state ?? 'waiting',
    receivedBytes: Number(imp.upload_received_bytes),
    sizeBytes: imp.upload_total_bytes === null ? null : Number(imp.upload_total_bytes),
    expires: toUnixSeconds(Number(imp.expires_ms)),
  };
}

function choosePartBytes(totalBytes: number): number {
  const needed = Math.ceil(totalBytes / PARTS_TARGET / MIB) * MIB;
  return Math.max(DEFAULT_PART_BYTES, needed);
}

const RANGE = /^bytes (\d{1,16})-(\d{1,16})\/(\d{1,16})$/;
const PROBE = /^bytes \*\/(\d{1,16})$/;

function parsePiece(request: UploadRequest): Piece {
  const header = request.contentRange?.trim();
  if (header === undefined || header === '') return { kind: 'whole', total: request.contentLength };
  const probe = PROBE.exec(header);
  if (probe) {
    if ((request.contentLength ?? 0) !== 0) throw invalidParam('content-range', '"bytes */total" goes with an empty body');
    return { kind: 'probe', total: Number(probe[1]) };
  }
  const m = RANGE.exec(header);
  if (!m) throw invalidParam('content-range', 'must be "bytes first-last/total" or "bytes */total"');
  const [first, last, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (last < first || last >= total) throw invalidParam('content-range', `bytes ${first}-${last} do not fit a total of ${total}`);
  if (request.contentLength !== undefined && request.contentLength !== last - first + 1) {
    throw invalidParam('content-range', `announces ${last - first + 1} bytes but Content-Length is ${request.contentLength}`);
  }
  return { kind: 'range', first, last, total };
}

const tooLarge = (max: number): AppError => new AppError('payload-too-large', `the build is larger than ${max} bytes`);

const brokeOff = (taskName: string, receivedBytes: number): AppError =>
  new AppError('invalid-param', `the upload broke off; the server holds ${receivedBytes} bytes: continue with Content-Range: bytes ${receivedBytes}-…`, {
    param: 'body', task: taskName, receivedBytes,
  });
