import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { findBuild } from '../db/repositories/build.repository.js';
import { findImport } from '../db/repositories/import.repository.js';
import { findOrgById } from '../db/repositories/org.repository.js';
import type { Clock } from '../domain/clock.js';
import { StepError } from '../pipeline/errors.js';
import { emitEvent } from '../webhooks/emit.js';
import type { WebhookEvent } from '../webhooks/event.js';
import type { TaskHandler } from '../queue/worker.js';
import { FinalDeployFailure, isFinalAttempt } from './import-deps.js';

type PipelineType = 'dltar' | 'mkraw' | 'deploy' | 'trace';

/**
 * Wraps a pipeline handler so that subscriptions hear of it (api.md §11): `begin` when its first
 * attempt starts, `end` when it succeeds, `error` when it fails for good. (`submit` is emitted by the
 * build service in the transaction that creates the import, and for `trace` by the training service in
 * the transaction that submits it.) Delivery is at least once: a task
 * taken over after its worker died may announce `begin` or `end` again.
 */
export function withPipelineEvents(type: PipelineType, deps: { db: Kysely<Database>; clock: Clock }, handler: TaskHandler): TaskHandler {
  const emit = (event: WebhookEvent) => deps.db.transaction().execute((trx) => emitEvent(trx, event, deps.clock.now()));
  return async (ctx) => {
    const base = await eventBase(deps.db, type, ctx.task);
    if (base && ctx.task.attempts <= 1) await emit({ ...base, event: 'begin' });
    try {
      const result = await handler(ctx);
      if (base) {
        const dxfName = (result as { dxfName?: unknown } | null)?.dxfName;
        await emit({ ...base, event: 'end', ...(typeof dxfName === 'string' ? { dxfName } : {}) });
      }
      return result;
    } catch (err) {
      if (base && isFinalAttempt(ctx.task, err)) await emit({ ...base, event: 'error', ...errorFields(type, err) });
      throw err;
    }
  };
}

/** The identifying fields of an event about `task`, or null for a task without org or app. */
async function eventBase(
  db: Kysely<Database>,
  type: PipelineType,
  task: { name: string; org_id: string | null; app_name: string | null; payload: string },
): Promise<Omit<WebhookEvent, 'event'> | null> {
  if (!task.org_id || !task.app_name) return null;
  const org = await findOrgById(db, task.org_id);
  if (!org) return null;
  const payload = task.payload ? (JSON.parse(task.payload) as { importTask?: unknown; setLive?: { appId?: unknown; buildId?: unknown } }) : {};
  // A set-live (release control) has no import: the build it makes live names the event.
  if (payload.setLive && typeof payload.setLive.appId === 'string' && typeof payload.setLive.buildId === 'number') {
    const build = await findBuild(db, payload.setLive.appId, payload.setLive.buildId);
    return {
      type, orgName: org.name, appName: task.app_name, taskName: task.name,
      ...(build?.build_name ? { buildName: build.build_name } : {}),
      ...(build?.dxf_name ? { dxfName: build.dxf_name } : {}),
    };
  }
  const importTask = typeof payload.importTask === 'string' ? payload.importTask : task.name;
  const imp = await findImport(db, importTask);
  return {
    type,
    orgName: org.name,
    appName: task.app_name,
    taskName: task.name,
    ...(imp?.build_name ? { buildName: imp.build_name } : {}),
    ...(imp?.dxf_name ? { dxfName: imp.dxf_name } : {}),
  };
}

/** The documented detail fields of a failed pipeline step, from a StepError-like error. */
function errorFields(type: PipelineType, err: unknown): Partial<WebhookEvent> {
  const stepFailure = err instanceof StepError || err instanceof FinalDeployFailure;
  const taskError: Record<string, unknown> = stepFailure
    ? { ...err.toTaskError() }
    : { message: err instanceof Error ? err.message : String(err) };
  const message = typeof taskError.message === 'string' ? taskError.message : 'failed';
  const out: Partial<WebhookEvent> = { error: { ...taskError, message } };
  if (type === 'dltar' && (taskError.httpStatus !== undefined || taskError.exitCode !== undefined)) {
    out.httpDownloadFailed = {
      ...(typeof taskError.httpStatus === 'number' ? { httpStatus: taskError.httpStatus } : {}),
      ...(typeof taskError.exitCode === 'number' ? { exitCode: taskError.exitCode } : {}),
      message,
    };
  }
  const frf = taskError.fileReadFailed as WebhookEvent['fileReadFailed'] | undefined;
  if (frf && typeof frf.filename === 'string') out.fileReadFailed = frf;
  if (typeof taskError.deployment === 'string') out.deployment = taskError.deployment;
  if (!stepFailure) out.exception = message;
  return out;
}
