import { decodeTrace, DEFAULT_TRACE_LIMITS, TraceFormatError, tracePathProblem, type Trace, type TraceLimits, type TraceRecord } from '@rockit/engine';

/**
 * Decodes an uploaded trace (api.md §9.3): the binary trace format of docs/FORMATS.md (plain, or
 * the whole file in one zstd frame) or the NDJSON interchange form, recognised by content.
 * Throws TraceFormatError with the engine's codes for anything malformed or over `limits`.
 */
export function decodeUploadedTrace(bytes: Uint8Array, limits: TraceLimits): Trace {
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  if (bytes[i] === 0x7b /* { */) return decodeNdjsonTrace(bytes, limits);
  return decodeTrace(bytes, limits);
}

const HEADER_KEYS = new Set(['format', 'version', 'org', 'app', 'build', 'dxf', 'session', 'firstSession', 'start']);
const RECORD_KEYS = new Set(['t', 'path', 'offset', 'length']);
const NDJSON_VERSION = 1;

/**
 * The NDJSON form: a header line
 * `{"format":"rockit-trace","version":1,"org","app","build"?,"dxf"?,"session","firstSession","start"}`
 * then one `{"t","path","offset","length"}` per read; records are stably sorted by `t`. Same limits
 * and error codes as the binary form.
 */
export function decodeNdjsonTrace(bytes: Uint8Array, limitsIn: TraceLimits): Trace {
  const limits = { ...DEFAULT_TRACE_LIMITS, ...Object.fromEntries(Object.entries(limitsIn).filter(([, v]) => v !== undefined)) } as Required<TraceLimits>;
  if (bytes.length > limits.maxFileBytes) throw new TraceFormatError('trace-limit-exceeded', `trace file larger than ${limits.maxFileBytes} bytes`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new TraceFormatError('trace-invalid', 'the NDJSON trace is not UTF-8');
  }
  const lines = text.split('\n');
  let lineNo = 0;
  const next = (): { n: number; v: Record<string, unknown> } | undefined => {
    while (lineNo < lines.length) {
      const raw = lines[lineNo++].replace(/\r$/, '');
      if (raw.trim() === '') continue;
      let v: unknown;
      try {
        v = JSON.parse(raw);
      } catch {
        throw new TraceFormatError(lineNo === lines.length && !text.endsWith('\n') ? 'trace-truncated' : 'trace-invalid', `line ${lineNo} is not JSON`);
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TraceFormatError('trace-invalid', `line ${lineNo} is not a JSON object`);
      return { n: lineNo, v: v as Record<string, unknown> };
    }
    return undefined;
  };
  const first = next();
  if (!first) throw new TraceFormatError('trace-truncated', 'the NDJSON trace has no header line');
  const h = first.v;
  if (h.format !== 'rockit-trace') throw new TraceFormatError('trace-bad-magic', 'the first line is not a rockit-trace header');
  if (h.version !== NDJSON_VERSION) throw new TraceFormatError('trace-unsupported-version', `trace version ${JSON.stringify(h.version)} is not supported`);
  for (const k of Object.keys(h)) if (!HEADER_KEYS.has(k)) throw new TraceFormatError('trace-invalid', `header has an unknown field '${k}'`);
  const str = (k: string, optional: boolean): string => {
    const v = h[k];
    if (v === undefined && optional) return '';
    if (typeof v !== 'string') throw new TraceFormatError('trace-invalid', `header field '${k}' must be a string`);
    if (Buffer.byteLength(v) > limits.maxStringBytes) throw new TraceFormatError('trace-limit-exceeded', `header field '${k}' is longer than ${limits.maxStringBytes} bytes`);
    return v;
  };
  const uint = (v: unknown, what: string): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new TraceFormatError('trace-invalid', `${what} must be an integer >= 0`);
    return v;
  };
  if (typeof h.firstSession !== 'boolean') throw new TraceFormatError('trace-invalid', "header field 'firstSession' must be true or false");
  const header = {
    orgName: str('org', false),
    appName: str('app', false),
    buildId: h.build === undefined ? 0 : uint(h.build, "header field 'build'"),
    dxfName: str('dxf', true),
    sessionId: str('session', false),
    firstSession: h.firstSession,
    startTimeUnixSeconds: uint(h.start, "header field 'start'"),
  };
  const records: TraceRecord[] = [];
  const paths = new Set<string>();
  for (let line = next(); line; line = next()) {
    const r = line.v;
    for (const k of Object.keys(r)) if (!RECORD_KEYS.has(k)) throw new TraceFormatError('trace-invalid', `line ${line.n} has an unknown field '${k}'`);
    if (records.length >= limits.maxRecords) throw new TraceFormatError('trace-limit-exceeded', `more than ${limits.maxRecords} records`);
    const tMs = uint(r.t, `line ${line.n}: t`);
    if (tMs > limits.maxDurationMs) throw new TraceFormatError('trace-limit-exceeded', `line ${line.n} is later than ${limits.maxDurationMs} ms`);
    if (typeof r.path !== 'string') throw new TraceFormatError('trace-invalid', `line ${line.n}: path must be a string`);
    const problem = tracePathProblem(r.path, limits.maxPathBytes);
    if (problem) throw new TraceFormatError(Buffer.byteLength(r.path) > limits.maxPathBytes ? 'trace-limit-exceeded' : 'trace-invalid', `line ${line.n}: ${problem}`);
    const offsetBytes = uint(r.offset, `line ${line.n}: offset`);
    const lengthBytes = uint(r.length, `line ${line.n}: length`);
    if (lengthBytes === 0 || offsetBytes + lengthBytes > Number.MAX_SAFE_INTEGER) throw new TraceFormatError('trace-invalid', `line ${line.n} has an invalid range`);
    if (!paths.has(r.path)) {
      if (paths.size >= limits.maxPaths) throw new TraceFormatError('trace-limit-exceeded', `more than ${limits.maxPaths} paths`);
      paths.add(r.path);
    }
    records.push({ tMs, path: r.path, offsetBytes, lengthBytes });
  }
  // Array.prototype.sort is stable: reads with equal times keep their order.
  records.sort((a, b) => a.tMs - b.tMs);
  return { header, records };
}
