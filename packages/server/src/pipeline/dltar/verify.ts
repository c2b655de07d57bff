// The dltar step's verification: streams a source into a sink while hashing, counting, enforcing
// limits and refusing anything that is not a tar after its first 512 bytes.
import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';

import { sniffTar, type TarCompression } from '@rockit/engine';

import { DownloadExitCode, StepError, canceledError, type FileReadFailed } from '../errors.js';
import type { DltarProgress, ObtainTarOptions, ObtainedTar } from '../dltar.js';
import { sizeMismatch, storageFailed, tooLarge } from './download-errors.js';

const TYPE_EXPECTED = 'tar (plain, gzip or zstd)';
const TAR_BLOCK = 512;
/** Report progress at least every this many bytes. */
const PROGRESS_STEP_BYTES = 1 << 20;

/** An opened source body and how to turn its stream errors into StepErrors. */
export interface Source {
  body: Readable;
  totalBytes?: number;
  /** Turns a stream error of `body` into the step's error. */
  classify: (err: unknown, receivedBytes: number) => StepError;
  /** Disposes of timers etc.; called once the body is done (either way). */
  close?: () => void;
  /** Abort controller that ends the body when the inspector refuses it. */
  abort?: (reason: StepError) => void;
}

export interface Sink {
  shown: string;
  filename: string;
  write: (body: Readable) => Promise<unknown>;
  resultKey: string;
  /** Called when the content is refused (size, sha256, not a tar). */
  onRefused: () => Promise<void>;
  /** Called on every failure, after onRefused when both apply. */
  onAnyFailure: () => Promise<void>;
}

export async function streamAndVerify(options: ObtainTarOptions, source: Source, sink: Sink): Promise<ObtainedTar> {
  const expected = options.sizeBytes;
  const limit = options.maxBytes;
  const totalBytes = expected ?? source.totalBytes;
  let failure: StepError | undefined;
  const fail = (e: StepError): StepError => {
    failure ??= e;
    if (source.abort) source.abort(failure);
    else source.body.destroy();
    return failure;
  };

  const inspector = new TarInspector({
    filename: sink.filename,
    check: (received) => {
      if (expected !== undefined && received > expected) return sizeMismatch(received, expected, sink.shown, true);
      if (received > limit) return tooLarge(received, limit);
      return undefined;
    },
    onProgress: (receivedBytes) => {
      if (!options.onProgress) return;
      const p: DltarProgress = { receivedBytes };
      if (totalBytes !== undefined && totalBytes > 0) {
        p.totalBytes = totalBytes;
        p.fraction = Math.min(1, receivedBytes / totalBytes);
      }
      options.onProgress(p);
    },
    onRefuse: (e) => fail(e),
  });

  source.body.on('error', (err) => {
    if (failure === undefined) fail(options.signal?.aborted ? canceledError(options.signal) : source.classify(err, inspector.receivedBytes));
  });
  const onAbort = (): void => {
    const e = fail(canceledError(options.signal));
    source.body.destroy(e);
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });

  let refused = false;
  try {
    // Every stream error is recorded through `fail` (or surfaces as the sink's rejection); these
    // listeners keep a late duplicate 'error' from becoming an uncaught exception.
    inspector.on('error', () => {});
    source.body.on('error', (err) => inspector.destroy(err));
    source.body.pipe(inspector);
    try {
      await sink.write(inspector);
    } catch (err) {
      if (failure === undefined) fail(storageFailed('storing the build failed', err));
    }
    if (failure === undefined && !inspector.finished) {
      fail(storageFailed('the blob store stopped reading the build early', undefined));
    }
    if (failure !== undefined) {
      refused = failure.code === 'size-mismatch' || failure.code === 'too-large' || failure.code === 'not-a-tar';
      throw failure;
    }
    const received = inspector.receivedBytes;
    if (source.totalBytes !== undefined && expected === undefined && received < source.totalBytes) {
      throw fail(
        new StepError('download-failed', `${sink.shown}: the body ended after ${received} of ${source.totalBytes} bytes`, {
          exitCode: DownloadExitCode.PartialFile,
          sizeBytesActual: received,
          sizeBytesExpected: source.totalBytes,
        }),
      );
    }
    if (expected !== undefined && received !== expected) {
      refused = true;
      throw fail(sizeMismatch(received, expected, sink.shown));
    }
    const sha256 = inspector.digest();
    if (options.sha256 !== undefined && sha256 !== options.sha256.toLowerCase()) {
      refused = true;
      throw fail(
        new StepError('sha256-mismatch', `${sink.shown}: SHA-256 is ${sha256}, expected ${options.sha256.toLowerCase()}`, {
          sha256Actual: sha256,
          sha256Expected: options.sha256.toLowerCase(),
        }),
      );
    }
    options.onProgress?.({ receivedBytes: received, totalBytes: received, fraction: 1 });
    return { tarKey: sink.resultKey, sizeBytes: received, sha256, compression: inspector.compression ?? 'none' };
  } catch (err) {
    if (refused) await sink.onRefused();
    await sink.onAnyFailure();
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    source.close?.();
    // After a failure the source may still be open (e.g. the store gave up first): release it.
    if (!source.body.destroyed) source.body.destroy();
  }
}

/** Refuses a body whose announced length already contradicts the announced size or the limit. */
export function checkAnnounced(length: number, options: ObtainTarOptions, shown: string): StepError | undefined {
  if (options.sizeBytes !== undefined && length !== options.sizeBytes) return sizeMismatch(length, options.sizeBytes, shown);
  if (length > options.maxBytes) return tooLarge(length, options.maxBytes);
  return undefined;
}

interface InspectorOptions {
  filename: string;
  /** Called with the running byte count; a returned error stops the stream. */
  check: (receivedBytes: number) => StepError | undefined;
  /** Called about every PROGRESS_STEP_BYTES and once at the end. */
  onProgress: (receivedBytes: number) => void;
  /** Records the refusal; returns the error to destroy the stream with. */
  onRefuse: (e: StepError) => StepError;
}

/** Pass-through that hashes, counts, enforces limits and refuses non-tars after the first 512 bytes. */
class TarInspector extends Transform {
  receivedBytes = 0;
  compression: TarCompression | undefined;
  finished = false;
  private readonly hash = createHash('sha256');
  private head: Buffer[] = [];
  private headBytes = 0;
  private nextProgressAt = PROGRESS_STEP_BYTES;

  constructor(private readonly opts: InspectorOptions) {
    super();
  }

  digest(): string {
    return this.hash.digest('hex');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.receivedBytes += chunk.length;
    const limitError = this.opts.check(this.receivedBytes);
    if (limitError) return cb(this.opts.onRefuse(limitError));
    this.hash.update(chunk);
    if (this.compression === undefined) {
      this.head.push(chunk);
      this.headBytes += chunk.length;
      if (this.headBytes >= TAR_BLOCK) {
        const refusal = this.decide();
        if (refusal) return cb(refusal);
      }
    }
    if (this.receivedBytes >= this.nextProgressAt) {
      this.nextProgressAt = this.receivedBytes + PROGRESS_STEP_BYTES;
      this.opts.onProgress(this.receivedBytes);
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.compression === undefined) {
      const refusal = this.decide();
      if (refusal) return cb(refusal);
    }
    this.finished = true;
    this.opts.onProgress(this.receivedBytes);
    cb();
  }

  private decide(): StepError | undefined {
    const verdict = sniffTar(Buffer.concat(this.head));
    this.head = [];
    if ('compression' in verdict) {
      this.compression = verdict.compression;
      return undefined;
    }
    const detail: FileReadFailed = { filename: this.opts.filename, typeExpected: TYPE_EXPECTED, typeDetected: verdict.typeDetected };
    return this.opts.onRefuse(
      new StepError('not-a-tar', `${this.opts.filename || 'the build'} is not a tar (found: ${verdict.typeDetected})`, {
        fileReadFailed: detail,
      }),
    );
  }
}
