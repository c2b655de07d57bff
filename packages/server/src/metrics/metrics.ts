import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';

/** How a task attempt ended, as the worker saw it. */
export type TaskOutcome = 'succeeded' | 'failed' | 'ended';

/** The task-shaped facts the metrics read when an attempt ends (type and the handler's result). */
export interface TaskEnd {
  type: string;
  outcome: TaskOutcome;
  seconds: number;
  /** The handler's result (succeeded) or the failure detail (failed), as stored on the task. */
  result?: unknown;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);

/**
 * The server's Prometheus metrics (prom-client), one registry per server (never the global one, so
 * several servers in one process stay apart). Exposed by `GET /metrics` only when ROCKIT_METRICS_TOKEN
 * is set; without it the server creates none of this and adds no hook. Label values come from our own
 * code (route patterns, task types, states), never from request text, so series stay bounded.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly http: Histogram<'method' | 'route' | 'status'>;
  private readonly taskSeconds: Histogram<'type' | 'outcome'>;
  private readonly uploadBytes: Counter;
  private readonly importBytes: Counter;
  private readonly imageBytes: Counter;
  private readonly patchBytes: Counter;
  private readonly patches: Counter;
  private readonly publishBytes: Counter;
  private readonly webhookFailures: Counter<'final'>;

  constructor(db: Kysely<Database>, webhookTaskType: string) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'rockit_' });
    this.http = new Histogram({
      name: 'rockit_http_request_duration_seconds',
      help: 'HTTP request duration by route pattern and status code',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.taskSeconds = new Histogram({
      name: 'rockit_task_duration_seconds',
      help: 'Task attempt duration by task type and outcome (succeeded, failed: to be retried or failed for good, ended: canceled or expired)',
      labelNames: ['type', 'outcome'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    });
    new Gauge({
      name: 'rockit_tasks',
      help: 'Tasks in the queue by type and state (read from the database at each scrape)',
      labelNames: ['type', 'state'],
      registers,
      async collect() {
        const rows = await db
          .selectFrom('tasks')
          .select(['type', 'status', (eb) => eb.fn.countAll<number>().as('n')])
          .groupBy(['type', 'status'])
          .execute();
        this.reset();
        for (const r of rows) this.set({ type: r.type, state: r.status }, Number(r.n));
      },
    });
    this.uploadBytes = new Counter({ name: 'rockit_upload_bytes_total', help: 'Bytes of build uploads (PUT /be/v1/uploads) answered 200', registers });
    this.importBytes = new Counter({ name: 'rockit_import_bytes_total', help: 'Bytes of build tars that entered the pipeline (dltar succeeded)', registers });
    this.imageBytes = new Counter({ name: 'rockit_image_bytes_total', help: 'Bytes of images made by mkraw', registers });
    this.patchBytes = new Counter({ name: 'rockit_patch_bytes_total', help: 'Bytes of patches made by mkraw', registers });
    this.patches = new Counter({ name: 'rockit_patches_total', help: 'Patches made by mkraw', registers });
    this.publishBytes = new Counter({ name: 'rockit_publish_bytes_total', help: 'Bytes copied to deployments (origins) by deploy', registers });
    this.webhookFailures = new Counter({
      name: 'rockit_webhook_delivery_failures_total',
      help: 'Failed webhook/Slack delivery attempts (final="true": no retry left)',
      labelNames: ['final'],
      registers,
    });
    this.webhookTaskType = webhookTaskType;
  }

  private readonly webhookTaskType: string;

  /** One answered HTTP request; `route` is the route's pattern (`/be/v1/users/:username`), or `unmatched`. */
  request(method: string, route: string | undefined, status: number, seconds: number): void {
    this.http.observe({ method, route: route ?? 'unmatched', status: String(status) }, seconds);
  }

  /** Request bytes of an upload PUT that was answered 200. */
  uploaded(bytes: number): void {
    if (bytes > 0) this.uploadBytes.inc(bytes);
  }

  /** A task attempt ended: its duration, and the bytes its result reports. */
  taskEnded(end: TaskEnd & { final?: boolean }): void {
    this.taskSeconds.observe({ type: end.type, outcome: end.outcome }, end.seconds);
    const r = (end.result ?? {}) as Record<string, unknown>;
    if (end.type === this.webhookTaskType && end.outcome === 'failed') this.webhookFailures.inc({ final: String(end.final === true) });
    if (end.outcome !== 'succeeded' || r.alreadyDone === true) return;
    if (end.type === 'dltar') this.importBytes.inc(num(r.sizeBytes));
    if (end.type === 'mkraw') {
      this.imageBytes.inc(num(r.sizeBytes));
      const patches = Array.isArray(r.patches) ? (r.patches as Array<Record<string, unknown>>) : [];
      this.patches.inc(patches.length);
      this.patchBytes.inc(patches.reduce((s, p) => s + num(p.sizeBytes), 0));
    }
    if (end.type === 'deploy' && Array.isArray(r.deployments)) {
      this.publishBytes.inc((r.deployments as Array<Record<string, unknown>>).reduce((s, d) => s + num(d.bytesCopied), 0));
    }
  }

  /** The Prometheus text exposition format. */
  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
