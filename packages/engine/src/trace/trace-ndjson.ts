// The NDJSON interchange form of a trace (docs/FORMATS.md, "Trace > NDJSON form") and content sniffing of
// every accepted trace form (binary or NDJSON, each plain or wrapped in one zstd frame).
//
//   {"format":"rockit-trace","version":1,"org":"…","app":"…","build":7,"dxf":"…","session":"…","firstSession":true,"start":1767225600}
//   {"t":0,"path":"bin/game","offset":0,"length":4096}
//
// Same limits and error codes as the binary form (TraceFormatError).

import { decodeTrace, encodeTrace, boundedZstd, resolveLimits, tracePathProblem, type ResolvedLimits } from './trace-codec.js';
import { TRACE_FORMAT_VERSION, TRACE_MAGIC, ZSTD_FRAME_MAGIC } from './trace-constants.js';
import { TraceFormatError } from './trace-error.js';
import type { Trace, TraceHeader, TraceLimits, TraceRecord } from './trace-types.js';

/** The `format` value of an NDJSON trace header line. */
export const TRACE_NDJSON_FORMAT = 'rockit-trace';
/** Longest accepted NDJSON line, bytes (a record with a maximal, fully escaped path fits easily). */
export const TRACE_NDJSON_MAX_LINE_BYTES = 64 * 1024;

const HEADER_KEYS = new Set(['format', 'version', 'org', 'app', 'build', 'dxf', 'session', 'firstSession', 'start']);
const RECORD_KEYS = new Set(['t', 'path', 'offset', 'length']);
const utf8 = new TextEncoder();

/** Which form a trace file has, judged by content. */
export type TraceForm = 'binary' | 'ndjson';

/**
 * Encodes a trace as NDJSON: the header line, then one line per record in time order (stable sort), each
 * line ending with '\n'. Refuses (TraceFormatError) exactly what encodeTrace refuses.
 */
export function encodeTraceNdjson(trace: Trace): Uint8Array {
  // encodeTrace validates every field and limit; reuse it rather than restate the rules.
  encodeTrace(trace, { compress: false });
  const h = trace.header;
  const header: Record<string, unknown> = { format: TRACE_NDJSON_FORMAT, version: TRACE_FORMAT_VERSION, org: h.orgName, app: h.appName };
  if (h.buildId !== 0) header.build = h.buildId;
  if (h.dxfName !== '') header.dxf = h.dxfName;
  Object.assign(header, { session: h.sessionId, firstSession: h.firstSession, start: h.startTimeUnixSeconds });
  const order = trace.records.map((r, i) => ({ r, i }));
  order.sort((a, b) => a.r.tMs - b.r.tMs || a.i - b.i);
  const lines = [JSON.stringify(header)];
  for (const { r } of order) lines.push(JSON.stringify({ t: r.tMs, path: r.path, offset: r.offsetBytes, length: r.lengthBytes }));
  return utf8.encode(lines.join('\n') + '\n');
}

function invalid(message: string): never {
  throw new TraceFormatError('trace-invalid', message);
}

function uint(v: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) invalid(`${what} must be an integer ≥ 0`);
  if (v > max) throw new TraceFormatError('trace-limit-exceeded', `${what} larger than ${max}`);
  return v;
}

function str(v: unknown, what: string, limits: ResolvedLimits): string {
  if (typeof v !== 'string') invalid(`${what} must be a string`);
  if (utf8.encode(v).length > limits.maxStringBytes) throw new TraceFormatError('trace-limit-exceeded', `${what} longer than ${limits.maxStringBytes} bytes`);
  return v;
}

function parseLine(text: string, lineNo: number): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    invalid(`line ${lineNo} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid(`line ${lineNo} is not a JSON object`);
  return v as Record<string, unknown>;
}

/**
 * Decodes an NDJSON trace (plain bytes; see parseAnyTrace for zstd-wrapped input). Records are returned in
 * time order after a stable sort. Unknown keys, a wrong `format` or `version` (→ 'trace-unsupported-version'),
 * bad paths, non-integer numbers, zero lengths and ranges past 2^53 − 1 are refused; limits as for decodeTrace
 * (the input is bounded by maxBodyBytes, the NDJSON being the decompressed form).
 */
export function decodeTraceNdjson(bytes: Uint8Array, limitsIn?: TraceLimits): Trace {
  const limits = resolveLimits(limitsIn);
  if (bytes.length > limits.maxBodyBytes) throw new TraceFormatError('trace-limit-exceeded', `NDJSON trace larger than ${limits.maxBodyBytes} bytes`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    invalid('NDJSON trace is not valid UTF-8');
  }
  let header: TraceHeader | undefined;
  const records: TraceRecord[] = [];
  const paths = new Set<string>();
  let lineNo = 0;
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    lineNo++;
    const raw = text.slice(pos, end);
    pos = end + 1;
    if (raw.length > TRACE_NDJSON_MAX_LINE_BYTES) throw new TraceFormatError('trace-limit-exceeded', `line ${lineNo} longer than ${TRACE_NDJSON_MAX_LINE_BYTES} bytes`);
    const line = raw.trim();
    if (line === '') continue;
    const o = parseLine(line, lineNo);
    if (!header) {
      if (o.format !== TRACE_NDJSON_FORMAT) throw new TraceFormatError('trace-bad-magic', `first line is not a ${TRACE_NDJSON_FORMAT} header`);
      if (o.version !== TRACE_FORMAT_VERSION) throw new TraceFormatError('trace-unsupported-version', `trace format version ${JSON.stringify(o.version)} is not supported`);
      for (const k of Object.keys(o)) if (!HEADER_KEYS.has(k)) invalid(`header has an unknown key ${JSON.stringify(k.slice(0, 40))}`);
      if (typeof o.firstSession !== 'boolean') invalid('header firstSession must be true or false');
      header = {
        orgName: str(o.org, 'org', limits),
        appName: str(o.app, 'app', limits),
        buildId: o.build === undefined ? 0 : uint(o.build, 'build'),
        dxfName: o.dxf === undefined ? '' : str(o.dxf, 'dxf', limits),
        sessionId: str(o.session, 'session', limits),
        firstSession: o.firstSession,
        startTimeUnixSeconds: uint(o.start, 'start'),
      };
      continue;
    }
    for (const k of Object.keys(o)) if (!RECORD_KEYS.has(k)) invalid(`line ${lineNo} has an unknown key ${JSON.stringify(k.slice(0, 40))}`);
    if (records.length >= limits.maxRecords) throw new TraceFormatError('trace-limit-exceeded', `more than ${limits.maxRecords} records`);
    const tMs = uint(o.t, `line ${lineNo} t`, limits.maxDurationMs);
    if (typeof o.path !== 'string') invalid(`line ${lineNo} path must be a string`);
    const path = o.path;
    if (!paths.has(path)) {
      if (utf8.encode(path).length > limits.maxPathBytes) throw new TraceFormatError('trace-limit-exceeded', `line ${lineNo}: path longer than ${limits.maxPathBytes} bytes`);
      const problem = tracePathProblem(path, limits.maxPathBytes);
      if (problem) invalid(`line ${lineNo}: ${problem}`);
      if (paths.size >= limits.maxPaths) throw new TraceFormatError('trace-limit-exceeded', `more than ${limits.maxPaths} paths`);
      paths.add(path);
    }
    const offsetBytes = uint(o.offset, `line ${lineNo} offset`);
    const lengthBytes = uint(o.length, `line ${lineNo} length`);
    if (lengthBytes === 0) invalid(`line ${lineNo}: length must be ≥ 1`);
    if (offsetBytes + lengthBytes > Number.MAX_SAFE_INTEGER) invalid(`line ${lineNo}: read ends beyond 2^53 − 1`);
    records.push({ tMs, path, offsetBytes, lengthBytes });
  }
  if (!header) throw new TraceFormatError('trace-truncated', 'NDJSON trace has no header line');
  // Stable sort (Array.prototype.sort is stable): equal times keep their order.
  records.sort((a, b) => a.tMs - b.tMs);
  return { header, records };
}

function startsWith(bytes: Uint8Array, magic: Uint8Array): boolean {
  if (bytes.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (bytes[i] !== magic[i]) return false;
  return true;
}

/** The form of (possibly zstd-wrapped) trace bytes, judged by content; null when neither. */
export function detectTraceForm(bytes: Uint8Array): TraceForm | null {
  if (startsWith(bytes, TRACE_MAGIC)) return 'binary';
  let i = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) i = 3; // UTF-8 BOM
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  return bytes[i] === 0x7b /* { */ ? 'ndjson' : null;
}

/**
 * Decodes a trace in any accepted form, recognised by content: binary or NDJSON, each plain or wrapped in
 * one zstd frame. The input as received is bounded by maxFileBytes; a zstd unwrap by maxBodyBytes (NDJSON)
 * and then maxFileBytes again for a binary trace. Errors: TraceFormatError (codes as decodeTrace;
 * 'trace-bad-magic' when the bytes are neither form).
 */
export function parseAnyTrace(input: Uint8Array, limitsIn?: TraceLimits): Trace {
  return decodeAnyTrace(input, limitsIn).trace;
}

/** parseAnyTrace, also saying which form the input had and whether it was wrapped in zstd. */
export function decodeAnyTrace(input: Uint8Array, limitsIn?: TraceLimits): { trace: Trace; form: TraceForm; zstdWrapped: boolean } {
  const limits = resolveLimits(limitsIn);
  if (input.length > limits.maxFileBytes) throw new TraceFormatError('trace-limit-exceeded', `trace file larger than ${limits.maxFileBytes} bytes`);
  let bytes = input;
  const zstdWrapped = startsWith(bytes, ZSTD_FRAME_MAGIC);
  if (zstdWrapped) bytes = boundedZstd(bytes, Math.max(limits.maxFileBytes, limits.maxBodyBytes));
  const form = detectTraceForm(bytes);
  if (form === 'binary') return { trace: decodeTrace(bytes, limits), form, zstdWrapped };
  if (form === 'ndjson') {
    const start = bytes[0] === 0xef ? 3 : 0;
    return { trace: decodeTraceNdjson(bytes.subarray(start), limits), form, zstdWrapped };
  }
  if (bytes.length < TRACE_MAGIC.length) throw new TraceFormatError('trace-truncated', 'trace shorter than its magic');
  throw new TraceFormatError('trace-bad-magic', 'neither a binary nor an NDJSON ROCKIT trace');
}
