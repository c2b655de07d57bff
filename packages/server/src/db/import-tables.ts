import type { Selectable } from 'kysely';

/**
 * Table of migration 0004 (one row per import, api.md §7.2), in the portable representation of
 * `database.ts`. The row is keyed by the import's `dltar` task and ties the chain
 * dltar → mkraw → deploy together, so that each handler can run twice without enqueuing its
 * follow-up twice (`mkraw_task` / `deploy_task` are set in the transaction that enqueues them).
 */

export type ImportSource = 'upload' | 'url';
/** `waiting`: the PUT has not completed; `received`: it has; `expired`: it can no longer happen. */
export type UploadState = 'waiting' | 'received' | 'expired';

export interface ImportsTable {
  /** The dltar task's name. */
  task_name: string;
  org_id: string;
  app_id: string;
  source: ImportSource;
  url: string | null;
  /** Announced size and sha256 (api.md §7.2 `size`, `sha256`). */
  size_bytes: number | null;
  sha256: string | null;
  build_name: string | null;
  /** SHA-256 (hex) of the one-time upload token; null for URL imports. */
  upload_token_hash: string | null;
  upload_state: UploadState | null;
  /** Upload deadline, ms; null for URL imports. */
  expires_ms: number | null;
  /** Where the tar is (or will be) in the blob store. */
  tar_key: string;
  /** Assigned when mkraw starts (so an import that fails in dltar uses no build id). */
  build_id: number | null;
  dxf_name: string | null;
  /** The image's manifest file name (needed to write release.json). */
  manifest_file: string | null;
  mkraw_task: string | null;
  deploy_task: string | null;
  created_ms: number;
  /** Migration 0006 — the blob store's multipart upload receiving the tar (null before the first PUT). */
  upload_id: string | null;
  /** JSON array of the stored parts (`StoredPart`), in order. */
  upload_parts: string | null;
  /** Size of every part but the last, fixed by the first PUT. */
  upload_part_bytes: number | null;
  /** Bytes durably stored so far (the sum of `upload_parts`): where the next PUT continues. */
  upload_received_bytes: number;
  /** The tar's size as the client announced it (Content-Length or Content-Range), when it did. */
  upload_total_bytes: number | null;
  /** The PUT writing now (a random id) and how long its lease lasts; another PUT waits until it lapses. */
  upload_writer: string | null;
  upload_writer_until_ms: number | null;
  /** SHA-256 (hex) and compression of the tar, when one PUT carried all of it (hashed as it arrived). */
  upload_sha256: string | null;
  upload_compression: 'none' | 'gzip' | 'zstd' | null;
}

export interface ImportTables {
  imports: ImportsTable;
}

export type ImportRow = Selectable<ImportsTable>;
