/**
 * Cuts a byte stream into the parts of a blob store's multipart put (`createMultipart` /
 * `putPart`), for uploads that must survive a broken connection or a dead server: every stored
 * part is reported through `onPart` (the caller records it durably) before the next one starts.
 *
 * Invariants:
 * - parts are stored in order, numbered after the ones given, each at the offset where the
 *   previous one ended; every part but the last is exactly `partBytes` long, except a tail kept
 *   by `flushTail({ last: false })`, which is at least MIN_MULTIPART_PART_BYTES;
 * - at most two parts are in memory: one being stored while the next fills;
 * - the first failure (store or `onPart`) is the one every later call rethrows.
 */
import { MIN_MULTIPART_PART_BYTES, type BlobStore, type StoredPart } from './blob-store.js';

export interface PartWriterOptions {
  store: BlobStore;
  key: string;
  uploadId: string;
  /** Size of a full part (≥ MIN_MULTIPART_PART_BYTES). */
  partBytes: number;
  /** Parts stored by earlier writers of the same upload (in order). */
  parts: StoredPart[];
  /** Called after each stored part with every part so far and the bytes they hold; may throw to stop. */
  onPart(parts: StoredPart[], storedBytes: number): Promise<void>;
}

export class PartWriter {
  private readonly partsSoFar: StoredPart[];
  private stored: number;
  private buffer: Buffer;
  private spare: Buffer | undefined;
  private fill = 0;
  private inFlight: Promise<void> | undefined;
  private failure: unknown;

  constructor(private readonly opts: PartWriterOptions) {
    if (!Number.isSafeInteger(opts.partBytes) || opts.partBytes < MIN_MULTIPART_PART_BYTES) {
      throw new RangeError(`part size ${opts.partBytes} is below ${MIN_MULTIPART_PART_BYTES} bytes`);
    }
    this.partsSoFar = [...opts.parts];
    this.stored = opts.parts.reduce((sum, p) => sum + p.sizeBytes, 0);
    this.buffer = Buffer.allocUnsafe(opts.partBytes);
  }

  /** Every part stored so far, in order. */
  get parts(): StoredPart[] {
    return [...this.partsSoFar];
  }

  /** Bytes held by the stored parts (what a resumed upload continues after). */
  get storedBytes(): number {
    return this.stored;
  }

  /** Bytes received but not stored yet (the part filling now). */
  get bufferedBytes(): number {
    return this.fill;
  }

  /** Takes the bytes of `chunk`; resolves once they are buffered (waits while a full part is being stored). */
  async write(chunk: Buffer): Promise<void> {
    this.rethrow();
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(chunk.length - at, this.buffer.length - this.fill);
      chunk.copy(this.buffer, this.fill, at, at + n);
      this.fill += n;
      at += n;
      if (this.fill === this.buffer.length) await this.startPart();
    }
  }

  /**
   * Stores what is buffered: always when `last` (the object's final part, any size, even empty
   * when nothing was stored yet); otherwise only if it can be a non-final part (≥ the store's
   * minimum), else those bytes are dropped and must be sent again. Waits for every part.
   */
  async flushTail({ last }: { last: boolean }): Promise<void> {
    await this.settle();
    const keep = last ? this.fill > 0 || this.partsSoFar.length === 0 : this.fill >= MIN_MULTIPART_PART_BYTES;
    if (keep) {
      await this.startPart();
      await this.settle();
    }
    this.fill = 0;
  }

  /** Waits for the part being stored; rethrows the first failure. */
  async settle(): Promise<void> {
    if (this.inFlight) await this.inFlight.catch(() => undefined);
    this.rethrow();
  }

  private async startPart(): Promise<void> {
    await this.settle();
    const body = this.buffer.subarray(0, this.fill);
    // Two buffers take turns (one being stored, one filling): no new allocation per part. The
    // spare is free: the part stored from it has settled above.
    const next = this.spare ?? Buffer.allocUnsafe(this.opts.partBytes);
    this.spare = this.buffer;
    this.buffer = next;
    this.fill = 0;
    const partNumber = this.partsSoFar.length + 1;
    const offset = this.stored;
    this.inFlight = (async () => {
      const part = await this.opts.store.putPart(this.opts.key, this.opts.uploadId, { partNumber, offset, body });
      this.partsSoFar.push(part);
      this.stored += part.sizeBytes;
      await this.opts.onPart(this.parts, this.stored);
    })().catch((err: unknown) => {
      this.failure ??= err;
    });
  }

  private rethrow(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}

/**
 * Drops what an upload that will never complete stored under `key`: its multipart parts (when
 * `uploadId` is set) and any object already completed. Best effort: failures are ignored.
 */
export async function discardUpload(store: BlobStore, key: string, uploadId: string | null): Promise<void> {
  if (uploadId !== null) await store.abortMultipart(key, uploadId).catch(() => undefined);
  await store.delete(key).catch(() => undefined);
}
