import type { Trace, TraceSummary } from './trace-types.js';

/** Counts of a decoded trace. Pure; O(records). */
export function summarizeTrace(trace: Trace): TraceSummary {
  let bytesRead = 0;
  let durationMs = 0;
  const paths = new Set<string>();
  for (const r of trace.records) {
    bytesRead += r.lengthBytes;
    if (r.tMs > durationMs) durationMs = r.tMs;
    paths.add(r.path);
  }
  return { records: trace.records.length, bytesRead, durationMs, paths: paths.size };
}
