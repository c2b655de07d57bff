import { PermanentTaskError, type TaskHandler } from '../queue/worker.js';

/** A named probe of a dependency (blob store, an origin): write, read back, delete. Throws on failure. */
export interface SelfCheck {
  name: string;
  run(signal: AbortSignal): Promise<void>;
}

export interface HelloPayload {
  message: string;
  maintenance: boolean;
}

/**
 * The `hello` task (POST /adm/v1/hello): proves queue → worker → result end to end by echoing the
 * message; with `maintenance`, runs every self-check and reports each. A failed check fails the
 * task (no retry would make a broken store work), with every check's outcome in the error.
 */
export function helloHandler(selfChecks: () => readonly SelfCheck[] | Promise<readonly SelfCheck[]>): TaskHandler {
  return async ({ payload, signal }) => {
    const p = payload as HelloPayload;
    const result: { message: string; maintenance: boolean; checks: Array<{ name: string; ok: boolean; message?: string }> } = {
      message: p.message,
      maintenance: p.maintenance,
      checks: [],
    };
    if (p.maintenance) {
      for (const check of await selfChecks()) {
        try {
          await check.run(signal);
          result.checks.push({ name: check.name, ok: true });
        } catch (e) {
          result.checks.push({ name: check.name, ok: false, message: e instanceof Error ? e.message : String(e) });
        }
      }
      const failed = result.checks.filter((c) => !c.ok);
      if (failed.length > 0) {
        throw new PermanentTaskError(`self-check failed: ${failed.map((c) => c.name).join(', ')}`, { checks: result.checks });
      }
    }
    return result;
  };
}
