// Progress events: what a launcher shows (and what `--json` prints, one object a line).

export type ClientPhase = 'connect' | 'preload' | 'stream' | 'verify' | 'patch' | 'update' | 'repair' | 'done' | 'paused';

export interface ClientEvent {
  phase: ClientPhase;
  /** Bytes done in this phase's unit: stored (downloaded) bytes while streaming, raw bytes when verifying. */
  bytes: number;
  total: number;
  /** Download rate in bytes per second (0 when not downloading). */
  rate: number;
  /** Seconds left at the current rate; null when unknown. */
  eta: number | null;
  /** The game can start (FastStart preload present, or the build complete). */
  ready: boolean;
  /** Once per install: the moment *ready to play* was reached. */
  readyNow?: boolean;
  /** Stream bytes of the FastStart preload, once measured. */
  preloadBytes?: number;
}

export type EventSink = (e: ClientEvent) => void;
