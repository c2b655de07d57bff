/**
 * The body of a subscription delivery (api.md §11). One event per task phase; subscriptions
 * filter on `eventName(e)` (`dltar.submit`, `deploy.error`, ...).
 */
export const WEBHOOK_EVENT_TYPES = ['dltar', 'mkraw', 'deploy', 'trace'] as const;
export const WEBHOOK_EVENT_PHASES = ['submit', 'begin', 'end', 'error'] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
export type WebhookEventPhase = (typeof WEBHOOK_EVENT_PHASES)[number];

export interface WebhookEvent {
  type: WebhookEventType;
  event: WebhookEventPhase;
  orgName: string;
  appName: string;
  buildName?: string;
  dxfName?: string;
  taskName: string;
  /** A short description of an unexpected failure. */
  exception?: string;
  /** dltar: the download of the native build failed. */
  httpDownloadFailed?: { httpStatus?: number; exitCode?: number; message?: string };
  /** mkraw: a file of the build could not be read as expected. */
  fileReadFailed?: { filename: string; typeExpected?: string; typeDetected?: string };
  /** The task's error (api.md §8), when the event is an error. */
  error?: { message: string; [detail: string]: unknown };
  /** deploy: the deployment (origin) concerned. */
  deployment?: string;
}

/** `type.event`, the name subscriptions list in `events`. */
export const eventName = (e: Pick<WebhookEvent, 'type' | 'event'>): string => `${e.type}.${e.event}`;

/** Every event name, the default of a subscription that lists none. */
export const ALL_EVENT_NAMES: readonly string[] = WEBHOOK_EVENT_TYPES.flatMap((t) => WEBHOOK_EVENT_PHASES.map((p) => `${t}.${p}`));
