import type { Selectable, Updateable } from 'kysely';

/**
 * The table of migration 0011 (FastStart part 2: trainings, api.md §10), in the portable
 * representation of `database.ts`: text ids, integer milliseconds, 0/1 booleans, JSON as text.
 */
export interface TrainingsTable {
  /** One row per app; created with the defaults the first time it is needed. */
  app_id: string;
  org_id: string;
  /** New traces that start automatic processing (and that a training needs at least). */
  n_traces_reliable: number;
  /** 1: processing starts by itself once `n_traces_reliable` new traces arrived. */
  auto: number;
  /** The app's trace count when processing last ran. */
  traces_at_last_run: number;
  last_processed_ms: number | null;
  /** The tNNN of the next image variant made from traces (`b0003-t001`...). */
  next_training: number;
  /** JSON `TrainingQuality` (training.repository.ts) of the last processing; null before. */
  quality: string | null;
  created_ms: number;
  updated_ms: number;
}

export interface TrainingTables {
  trainings: TrainingsTable;
}

export type TrainingRow = Selectable<TrainingsTable>;
export type TrainingUpdate = Updateable<TrainingsTable>;
