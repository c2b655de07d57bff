// The in-memory model of one play-session trace (spec/engine.md §3).

/** Who and what a trace describes. Strings are UTF-8; sizes are bounded by TraceLimits.maxStringBytes. */
export interface TraceHeader {
  orgName: string;
  appName: string;
  /** Build id (1, 2, 3... per app); 0 means unknown. */
  buildId: number;
  /** The image variant the session ran against ('' when not known). */
  dxfName: string;
  sessionId: string;
  /** True when this was the player's first session of this app. */
  firstSession: boolean;
  /** Session start, unix seconds. */
  startTimeUnixSeconds: number;
}

/**
 * One read: `lengthBytes` bytes of `path` at `offsetBytes`, `tMs` milliseconds after the session start.
 * Addressed by path and offset (never by chunk) so a trace stays meaningful for the next build.
 */
export interface TraceRecord {
  tMs: number;
  /** Relative, '/'-separated, normalised path inside the game folder. */
  path: string;
  offsetBytes: number;
  lengthBytes: number;
}

export interface Trace {
  header: TraceHeader;
  /** Ordered by tMs ascending (ties keep their recorded order). */
  records: TraceRecord[];
}

/** Decoder limits (tar-bomb style protection for uploads). Every field is optional; defaults in trace-constants.ts. */
export interface TraceLimits {
  /** Largest accepted input (the file as received). */
  maxFileBytes?: number;
  /** Largest accepted decompressed body. */
  maxBodyBytes?: number;
  maxRecords?: number;
  /** Most distinct paths. */
  maxPaths?: number;
  /** Longest path, UTF-8 bytes. */
  maxPathBytes?: number;
  /** Longest header string (org, app, dxf, session id), UTF-8 bytes. */
  maxStringBytes?: number;
  /** Largest record time. */
  maxDurationMs?: number;
}

export interface TraceSummary {
  records: number;
  /** Sum of record lengths (overlapping reads count each time). */
  bytesRead: number;
  /** tMs of the last record; 0 for an empty trace. */
  durationMs: number;
  /** Distinct paths read. */
  paths: number;
}

export interface EncodeTraceOptions {
  /** Compress the body with zstd (default true; tiny bodies are stored raw anyway). */
  compress?: boolean;
}
