/**
 * Names shared by the code that enqueues tasks (services) and the code that runs them
 * (task-handlers/): queue keys and payload shapes. Here, below both, so that services never
 * import a handler.
 */

/** Tasks of one app's mkraw, deploy and trace steps run one at a time, in order. */
export const appQueueKey = (appId: string): string => `app:${appId}`;

/** Payload of a `trace` task. */
export interface TraceTaskPayload {
  appId: string;
  /** `trigger`: POST /be/v1/trigger; `auto`: nTracesReliable new traces arrived. */
  reason: 'trigger' | 'auto';
}
