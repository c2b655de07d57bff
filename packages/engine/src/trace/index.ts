export { encodeTrace, decodeTrace, tracePathProblem } from './trace-codec.js';
export { summarizeTrace } from './summarize-trace.js';
export { TraceFormatError } from './trace-error.js';
export type { TraceErrorCode } from './trace-error.js';
export { TRACE_FORMAT_VERSION, TRACE_MAGIC, DEFAULT_TRACE_LIMITS } from './trace-constants.js';
export type { Trace, TraceHeader, TraceRecord, TraceLimits, TraceSummary, EncodeTraceOptions } from './trace-types.js';
export { encodeTraceNdjson, decodeTraceNdjson, parseAnyTrace, decodeAnyTrace, detectTraceForm, TRACE_NDJSON_FORMAT, type TraceForm } from './trace-ndjson.js';
