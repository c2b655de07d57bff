// Encoder and strict decoder of the trace file format (layout: docs/FORMATS.md, "## Trace").

import { createHash } from 'node:crypto';
import binding from 'zstd-napi/binding.js';
import { compress as zstdCompress } from 'zstd-napi';
import { ByteReader, ByteWriter, type ReadFailure } from '../format/bytes.js';
import {
  DEFAULT_TRACE_LIMITS,
  TRACE_FLAG_FIRST_SESSION,
  TRACE_FORMAT_VERSION,
  TRACE_MAGIC,
  TRACE_MIN_COMPRESS_BYTES,
  TRACE_PREFIX_BYTES,
  TRACE_PREFIX_CHECKED_BYTES,
  TRACE_SUPPORTED_VERSIONS,
  TRACE_ZSTD_LEVEL,
  TraceCodec,
  ZSTD_FRAME_MAGIC,
} from './trace-constants.js';
import { TraceFormatError } from './trace-error.js';
import type { EncodeTraceOptions, Trace, TraceHeader, TraceLimits, TraceRecord } from './trace-types.js';

export type ResolvedLimits = Required<TraceLimits>;

export function resolveLimits(limits?: TraceLimits): ResolvedLimits {
  return { ...DEFAULT_TRACE_LIMITS, ...stripUndefined(limits ?? {}) };
}

function stripUndefined(o: TraceLimits): TraceLimits {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as TraceLimits;
}

const utf8 = new TextEncoder();

/**
 * A valid trace path: relative, '/'-separated, normalised (no '', '.' or '..' segment), no NUL or
 * backslash, at most maxPathBytes UTF-8 bytes. Returns a reason, or null when valid.
 */
export function tracePathProblem(path: string, maxPathBytes: number = DEFAULT_TRACE_LIMITS.maxPathBytes): string | null {
  if (path.length === 0) return 'empty path';
  if (utf8.encode(path).length > maxPathBytes) return 'path too long';
  if (path.includes('\0') || path.includes('\\')) return 'path contains NUL or backslash';
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') return 'path is absolute or not normalised';
  }
  return null;
}

function checkSafeUint(v: number, what: string, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isSafeInteger(v) || v < 0 || v > max) {
    throw new TraceFormatError('trace-invalid', `${what} must be an integer in [0, ${max}]`);
  }
}

function checkString(s: string, limits: ResolvedLimits, what: string): void {
  if (typeof s !== 'string') throw new TraceFormatError('trace-invalid', `${what} must be a string`);
  if (utf8.encode(s).length > limits.maxStringBytes) {
    throw new TraceFormatError('trace-limit-exceeded', `${what} longer than ${limits.maxStringBytes} bytes`);
  }
}

function checkRecord(r: TraceRecord, limits: ResolvedLimits): void {
  checkSafeUint(r.tMs, 'record tMs', limits.maxDurationMs);
  checkSafeUint(r.offsetBytes, 'record offsetBytes');
  checkSafeUint(r.lengthBytes, 'record lengthBytes');
  if (r.lengthBytes === 0) throw new TraceFormatError('trace-invalid', 'record lengthBytes must be ≥ 1');
  if (r.offsetBytes + r.lengthBytes > Number.MAX_SAFE_INTEGER) {
    throw new TraceFormatError('trace-invalid', 'record ends beyond 2^53 − 1');
  }
}

/**
 * Encodes a trace. Records are stored in tMs order (a stable sort: equal times keep their order),
 * so `decodeTrace(encodeTrace(t))` equals `t` with its records sorted.
 * Throws TraceFormatError ('trace-invalid' | 'trace-limit-exceeded') for anything the decoder, with
 * default limits, would refuse: bad paths, negative or fractional numbers, zero-length reads, too many records.
 */
export function encodeTrace(trace: Trace, options: EncodeTraceOptions = {}): Uint8Array {
  const limits = resolveLimits();
  const h = trace.header;
  for (const [name, value] of [
    ['orgName', h.orgName],
    ['appName', h.appName],
    ['dxfName', h.dxfName],
    ['sessionId', h.sessionId],
  ] as const) {
    checkString(value, limits, name);
  }
  checkSafeUint(h.buildId, 'buildId');
  checkSafeUint(h.startTimeUnixSeconds, 'startTimeUnixSeconds');
  if (trace.records.length > limits.maxRecords) {
    throw new TraceFormatError('trace-limit-exceeded', `more than ${limits.maxRecords} records`);
  }

  const order = trace.records.map((r, i) => ({ r, i }));
  order.sort((a, b) => a.r.tMs - b.r.tMs || a.i - b.i);
  const records = order.map((o) => o.r);

  const pathIndex = new Map<string, number>();
  const paths: string[] = [];
  for (const r of records) {
    checkRecord(r, limits);
    if (!pathIndex.has(r.path)) {
      const problem = tracePathProblem(r.path, limits.maxPathBytes);
      if (problem) throw new TraceFormatError('trace-invalid', `record path: ${problem}`);
      pathIndex.set(r.path, paths.length);
      paths.push(r.path);
    }
  }
  if (paths.length > limits.maxPaths) {
    throw new TraceFormatError('trace-limit-exceeded', `more than ${limits.maxPaths} paths`);
  }

  const w = new ByteWriter();
  w.string(h.orgName);
  w.string(h.appName);
  w.varint(h.buildId);
  w.string(h.dxfName);
  w.string(h.sessionId);
  w.u8(h.firstSession ? TRACE_FLAG_FIRST_SESSION : 0);
  w.varint(h.startTimeUnixSeconds);
  w.varint(paths.length);
  for (const p of paths) w.string(p);
  w.varint(records.length);
  // Per path, where the previous read ended: sequential reads then code as offset delta 0.
  const nextOffset = new Array<number>(paths.length).fill(0);
  let prevT = 0;
  let prevPath = -1;
  for (const r of records) {
    const pi = pathIndex.get(r.path)!;
    w.varint(r.tMs - prevT);
    w.varint(pi === prevPath ? 0 : pi + 1);
    w.svarint(r.offsetBytes - nextOffset[pi]);
    w.varint(r.lengthBytes);
    prevT = r.tMs;
    prevPath = pi;
    nextOffset[pi] = r.offsetBytes + r.lengthBytes;
  }
  const body = w.finish();
  if (body.length > limits.maxBodyBytes) {
    throw new TraceFormatError('trace-limit-exceeded', `body larger than ${limits.maxBodyBytes} bytes`);
  }

  let codec: number = TraceCodec.Raw;
  let stored = body;
  if ((options.compress ?? true) && body.length >= TRACE_MIN_COMPRESS_BYTES) {
    const z = zstdCompress(body, { compressionLevel: TRACE_ZSTD_LEVEL });
    if (z.length < body.length) {
      codec = TraceCodec.Zstd;
      stored = z;
    }
  }

  const out = new Uint8Array(TRACE_PREFIX_BYTES + stored.length);
  const view = new DataView(out.buffer);
  out.set(TRACE_MAGIC, 0);
  view.setUint16(4, TRACE_FORMAT_VERSION, true);
  out[6] = codec;
  out[7] = 0;
  view.setUint32(8, body.length, true);
  view.setUint32(12, stored.length, true);
  out.set(checksum(out.subarray(0, TRACE_PREFIX_CHECKED_BYTES), body), TRACE_PREFIX_CHECKED_BYTES);
  out.set(stored, TRACE_PREFIX_BYTES);
  if (out.length > limits.maxFileBytes) {
    throw new TraceFormatError('trace-limit-exceeded', `trace file larger than ${limits.maxFileBytes} bytes`);
  }
  return out;
}

function checksum(prefix: Uint8Array, body: Uint8Array): Uint8Array {
  return createHash('sha256').update(prefix).update(body).digest();
}

function startsWith(bytes: Uint8Array, magic: Uint8Array): boolean {
  if (bytes.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (bytes[i] !== magic[i]) return false;
  return true;
}

/**
 * Decompresses zstd frames in `src` into at most `maxOut` bytes without trusting any size field
 * (a decompression bomb stops at the limit). Throws 'trace-limit-exceeded' past the limit and
 * 'trace-invalid' for corrupt or truncated frames.
 */
export function boundedZstd(src: Uint8Array, maxOut: number): Uint8Array {
  const dctx = new binding.DCtx();
  let out = new Uint8Array(Math.min(maxOut + 1, Math.max(64 * 1024, src.length * 4)));
  let produced = 0;
  let consumed = 0;
  let pending = 1;
  try {
    while (consumed < src.length || pending !== 0) {
      if (produced === out.length) {
        if (out.length > maxOut) throw new TraceFormatError('trace-limit-exceeded', `decompressed trace larger than ${maxOut} bytes`);
        const next = new Uint8Array(Math.min(maxOut + 1, out.length * 2));
        next.set(out);
        out = next;
      }
      const [hint, written, read] = dctx.decompressStream(out.subarray(produced), src.subarray(consumed));
      produced += written;
      consumed += read;
      pending = hint;
      if (written === 0 && read === 0) break;
    }
  } catch (err) {
    if (err instanceof TraceFormatError) throw err;
    throw new TraceFormatError('trace-invalid', 'corrupt zstd data');
  }
  if (produced > maxOut) throw new TraceFormatError('trace-limit-exceeded', `decompressed trace larger than ${maxOut} bytes`);
  if (pending !== 0 || consumed < src.length) throw new TraceFormatError('trace-truncated', 'zstd data ends mid-frame');
  return out.subarray(0, produced);
}

/**
 * Decodes and strictly validates a trace file: as written by encodeTrace, or that whole file wrapped
 * in one zstd frame (an upload compressed in transit). Never trusts a size field before checking it
 * against `limits`; returns records in tMs order (stored times are non-decreasing by construction).
 *
 * Errors (TraceFormatError.code): 'trace-truncated' (input ends early), 'trace-bad-magic',
 * 'trace-unsupported-version', 'trace-bad-codec', 'trace-checksum-mismatch', 'trace-limit-exceeded'
 * (file, body, record, path or string limits; records later than maxDurationMs), 'trace-invalid'
 * (anything else malformed: bad varints, paths, UTF-8, trailing bytes). Random input never crashes or hangs.
 */
export function decodeTrace(input: Uint8Array, limitsIn?: TraceLimits): Trace {
  const limits = resolveLimits(limitsIn);
  if (input.length > limits.maxFileBytes) {
    throw new TraceFormatError('trace-limit-exceeded', `trace file larger than ${limits.maxFileBytes} bytes`);
  }
  let bytes = input;
  if (startsWith(bytes, ZSTD_FRAME_MAGIC)) bytes = boundedZstd(bytes, limits.maxFileBytes);
  if (bytes.length < TRACE_MAGIC.length) throw new TraceFormatError('trace-truncated', 'trace shorter than its magic');
  if (!startsWith(bytes, TRACE_MAGIC)) throw new TraceFormatError('trace-bad-magic', 'not a ROCKIT trace');
  if (bytes.length < TRACE_PREFIX_BYTES) throw new TraceFormatError('trace-truncated', 'trace shorter than its header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(4, true);
  if (!TRACE_SUPPORTED_VERSIONS.includes(version)) {
    throw new TraceFormatError('trace-unsupported-version', `trace format version ${version} is not supported`);
  }
  const codec = bytes[6];
  if (codec !== TraceCodec.Raw && codec !== TraceCodec.Zstd) throw new TraceFormatError('trace-bad-codec', `unknown body codec ${codec}`);
  if (bytes[7] !== 0) throw new TraceFormatError('trace-invalid', 'reserved header byte is not zero');
  const rawBytes = view.getUint32(8, true);
  const storedBytes = view.getUint32(12, true);
  if (rawBytes > limits.maxBodyBytes) {
    throw new TraceFormatError('trace-limit-exceeded', `trace body larger than ${limits.maxBodyBytes} bytes`);
  }
  const available = bytes.length - TRACE_PREFIX_BYTES;
  if (storedBytes > available) throw new TraceFormatError('trace-truncated', 'trace body is cut short');
  if (storedBytes < available) throw new TraceFormatError('trace-invalid', 'trailing bytes after the trace body');
  const stored = bytes.subarray(TRACE_PREFIX_BYTES);
  let body: Uint8Array;
  if (codec === TraceCodec.Raw) {
    if (storedBytes !== rawBytes) throw new TraceFormatError('trace-invalid', 'raw body size mismatch');
    body = stored;
  } else {
    body = boundedZstd(stored, rawBytes);
    if (body.length !== rawBytes) throw new TraceFormatError('trace-invalid', 'decompressed body size mismatch');
  }
  const expected = checksum(bytes.subarray(0, TRACE_PREFIX_CHECKED_BYTES), body);
  const actual = bytes.subarray(TRACE_PREFIX_CHECKED_BYTES, TRACE_PREFIX_BYTES);
  for (let i = 0; i < expected.length; i++) {
    if (expected[i] !== actual[i]) throw new TraceFormatError('trace-checksum-mismatch', 'trace checksum does not match');
  }
  return parseBody(body, limits);
}

/** The trace body's reader failures: a limit is `trace-limit-exceeded`, anything else `trace-invalid`. */
const traceFailure: ReadFailure = (detail, offset, limit) =>
  limit ? new TraceFormatError('trace-limit-exceeded', detail) : new TraceFormatError('trace-invalid', `trace body: ${detail} at byte ${offset}`);

/** Smallest encoded record: four one-byte varints. */
const MIN_RECORD_BYTES = 4;

function parseBody(body: Uint8Array, limits: ResolvedLimits): Trace {
  const r = new ByteReader(body, traceFailure);
  const orgName = r.string(limits.maxStringBytes, 'orgName');
  const appName = r.string(limits.maxStringBytes, 'appName');
  const buildId = r.varint();
  const dxfName = r.string(limits.maxStringBytes, 'dxfName');
  const sessionId = r.string(limits.maxStringBytes, 'sessionId');
  const flags = r.u8();
  if ((flags & ~TRACE_FLAG_FIRST_SESSION) !== 0) throw new TraceFormatError('trace-invalid', 'unknown header flags');
  const startTimeUnixSeconds = r.varint();
  const header: TraceHeader = {
    orgName,
    appName,
    buildId,
    dxfName,
    sessionId,
    firstSession: (flags & TRACE_FLAG_FIRST_SESSION) !== 0,
    startTimeUnixSeconds,
  };

  const pathCount = r.varint();
  if (pathCount > limits.maxPaths) throw new TraceFormatError('trace-limit-exceeded', `more than ${limits.maxPaths} paths`);
  if (pathCount * 2 > r.remaining) throw new TraceFormatError('trace-invalid', 'path table overruns the body');
  const paths: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < pathCount; i++) {
    const p = r.string(limits.maxPathBytes, 'path');
    const problem = tracePathProblem(p, limits.maxPathBytes);
    if (problem) throw new TraceFormatError('trace-invalid', `path ${i}: ${problem}`);
    if (seen.has(p)) throw new TraceFormatError('trace-invalid', `path ${i} is listed twice`);
    seen.add(p);
    paths.push(p);
  }

  const recordCount = r.varint();
  if (recordCount > limits.maxRecords) throw new TraceFormatError('trace-limit-exceeded', `more than ${limits.maxRecords} records`);
  if (recordCount * MIN_RECORD_BYTES > r.remaining) throw new TraceFormatError('trace-invalid', 'record table overruns the body');
  if (recordCount > 0 && pathCount === 0) throw new TraceFormatError('trace-invalid', 'records without paths');
  const nextOffset = new Array<number>(pathCount).fill(0);
  const used = new Uint8Array(pathCount);
  const records: TraceRecord[] = new Array(recordCount);
  let t = 0;
  let pi = -1;
  for (let i = 0; i < recordCount; i++) {
    t += r.varint();
    if (t > limits.maxDurationMs) throw new TraceFormatError('trace-limit-exceeded', `record ${i} later than ${limits.maxDurationMs} ms`);
    const ref = r.varint();
    if (ref === 0) {
      if (pi < 0) throw new TraceFormatError('trace-invalid', 'first record refers to a previous path');
    } else {
      if (ref > pathCount) throw new TraceFormatError('trace-invalid', `record ${i} refers to a missing path`);
      pi = ref - 1;
    }
    const offset = nextOffset[pi] + r.svarint();
    const length = r.varint();
    if (offset < 0 || length === 0 || offset + length > Number.MAX_SAFE_INTEGER) {
      throw new TraceFormatError('trace-invalid', `record ${i} has an invalid range`);
    }
    nextOffset[pi] = offset + length;
    used[pi] = 1;
    records[i] = { tMs: t, path: paths[pi], offsetBytes: offset, lengthBytes: length };
  }
  if (r.remaining !== 0) throw new TraceFormatError('trace-invalid', 'trailing bytes after the records');
  if (used.includes(0)) throw new TraceFormatError('trace-invalid', 'path table lists a path no record reads');
  return { header, records };
}
