// Gathers the steps of one ApplyJob on the main thread: files of B (whole, or a piece of a large one), the
// payloads they need copied into one transferable buffer, and the sizes and hashes of the chunks they name
// copied out of the manifests (a hash is a view of a large buffer: cloning it would copy the whole buffer).

import type { ApplyJob, JobFile, JobSpan, JobStep } from './apply-job.js';

export class ApplyJobBuilder {
  private readonly files: JobFile[] = [];
  private readonly payloads: Uint8Array[] = [];
  private payloadBytes = 0;
  /** Bytes of B the job writes (its share of the memory and time budget). */
  rawBytes = 0;
  private readonly paths: string[] = [];
  private readonly names: string[] = [];
  private readonly pathIndex = new Map<string, number>();
  private readonly sizes: number[] = [];
  private readonly hashes: Uint8Array[] = [];
  private current: JobFile | undefined;
  /** Jobs sent earlier that this one reads the output of (Reuse steps): it is sent once they have finished. */
  readonly waitFor: Array<Promise<unknown>> = [];

  get empty(): boolean {
    return this.files.length === 0;
  }

  get fileCount(): number {
    return this.files.length;
  }

  /** Starts the next file (or piece of one); its steps follow. */
  file(f: Omit<JobFile, 'steps'>): void {
    this.current = { ...f, steps: [] };
    this.files.push(this.current);
  }

  /** Index of a file to read (A's, or B's for Reuse). */
  path(abs: string, name: string): number {
    let i = this.pathIndex.get(abs);
    if (i === undefined) {
      i = this.paths.length;
      this.paths.push(abs);
      this.names.push(name);
      this.pathIndex.set(abs, i);
    }
    return i;
  }

  /** Adds chunks (raw size, SHA-256) and returns the index of the first. */
  chunks(list: ReadonlyArray<{ rawSizeBytes: number; hash: Uint8Array }>): number {
    const first = this.sizes.length;
    for (const c of list) {
      this.sizes.push(c.rawSizeBytes);
      this.hashes.push(c.hash);
    }
    return first;
  }

  /** Copies a payload into the job; returns its start in the job's buffer. */
  payload(bytes: Uint8Array): number {
    const start = this.payloadBytes;
    this.payloads.push(bytes);
    this.payloadBytes += bytes.length;
    return start;
  }

  span(aFile: number, offset: number, chunk: number, count: number): JobSpan {
    return { aFile, offset, chunk, count };
  }

  step(s: JobStep, rawBytes: number): void {
    this.current!.steps.push(s);
    this.rawBytes += rawBytes;
  }

  build(): ApplyJob {
    const buffer = new ArrayBuffer(this.payloadBytes);
    const all = new Uint8Array(buffer);
    let p = 0;
    for (const b of this.payloads) {
      all.set(b, p);
      p += b.length;
    }
    const hashes = new Uint8Array(32 * this.hashes.length);
    this.hashes.forEach((h, i) => hashes.set(h, 32 * i));
    return { kind: 'patch-apply', buffer, files: this.files, aPaths: this.paths, aNames: this.names, sizes: Float64Array.from(this.sizes), hashes };
  }
}
