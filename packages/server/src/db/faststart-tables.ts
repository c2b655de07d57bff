import type { Insertable, Selectable } from 'kysely';

/**
 * Tables of migration 0010 (FastStart part 1: download keys and play traces), in the portable
 * representation of `database.ts`: text ids, integer milliseconds, 0/1 booleans, JSON as text.
 */

/** A download key of an app (api.md §2.3 resource `keys`): clients trade it for download tokens. */
export interface DownloadKeysTable {
  id: string;
  org_id: string;
  app_id: string;
  label: string;
  /** sha256 hex of the secret; the secret itself is shown once, on create. */
  key_hash: string;
  created_ms: number;
  last_used_ms: number | null;
}

/** One uploaded play trace; the body (binary trace format, zstd) is in the blob store at `blob_key`. */
export interface TracesTable {
  /** `tr_…` (sortable). */
  id: string;
  org_id: string;
  app_id: string;
  /** The build the trace was recorded on (null: the header named none and the app had no current build). */
  build_id: number | null;
  dxf_name: string | null;
  session_id: string;
  /** 1 when the trace is of the player's first session. */
  first_session: number;
  records: number;
  /** Sum of the records' lengths. */
  bytes_read: number;
  /** Time of the last record (ms since the trace's start). */
  duration_ms: number;
  /** Fraction 0..1 of the read bytes that fall on files/offsets of the build. */
  coverage: number;
  /** `traces/{orgId}/{appId}/{traceId}.rktr`. */
  blob_key: string;
  /** Bytes stored in the blob store. */
  size_bytes: number;
  created_ms: number;
}

export interface FastStartTables {
  download_keys: DownloadKeysTable;
  traces: TracesTable;
}

export type DownloadKeyRow = Selectable<DownloadKeysTable>;
export type NewDownloadKey = Insertable<DownloadKeysTable>;
export type TraceRow = Selectable<TracesTable>;
export type NewTrace = Insertable<TracesTable>;
