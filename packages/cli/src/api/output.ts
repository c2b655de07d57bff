// How results and failures look: plain text for people (tables, ages, error lines with the API's
// error name and request id) and JSON for scripts (the API's own error fields).
import { ApiError, NetworkError } from './client.js';
import { TaskFailedError } from './follow-tasks.js';

/** The machine-readable form of a failure: the API's own error fields where there are some. */
export function errorToJson(err: unknown): Record<string, unknown> {
  if (err instanceof ApiError) {
    return {
      status: 'error',
      error: err.error,
      message: err.message,
      httpStatus: err.status,
      ...(err.param !== undefined ? { param: err.param } : {}),
      ...(err.requestId !== undefined ? { requestId: err.requestId } : {}),
      ...err.details,
    };
  }
  if (err instanceof TaskFailedError) {
    return { status: 'error', error: 'task-failed', message: err.message, task: err.task };
  }
  if (err instanceof NetworkError) return { status: 'error', error: 'network', message: err.message };
  return { status: 'error', error: 'cli', message: err instanceof Error ? err.message : String(err) };
}

/** A human-readable form of a failure: message, API error name, param, extra fields, request id, hint. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    const extras = Object.entries(err.details)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    const lines = [
      `rockit: ${err.message}`,
      `  error: ${err.error} (HTTP ${err.status})${err.param ? `, param: ${err.param}` : ''}${extras ? `, ${extras}` : ''}`,
    ];
    if (err.requestId) lines.push(`  request id: ${err.requestId}`);
    if (err.hint) lines.push(`  hint: ${err.hint}`);
    return lines.join('\n');
  }
  if (err instanceof TaskFailedError) return `rockit: ${err.message}\n${formatTaskError(err.task)}`;
  const hint = (err as { hint?: unknown } | null)?.hint;
  return `rockit: ${err instanceof Error ? err.message : String(err)}${typeof hint === 'string' ? `\n  hint: ${hint}` : ''}`;
}

/** The detail fields of a task error (api.md §8), one per line, for people. */
export function formatTaskError(task: { error?: unknown }): string {
  const error = task.error;
  if (!error || typeof error !== 'object') return '';
  const lines: string[] = [];
  for (const [key, value] of Object.entries(error as Record<string, unknown>)) {
    if (key === 'message') continue;
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) lines.push(`  ${key}.${k}: ${String(v)}`);
    } else {
      lines.push(`  ${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
    }
  }
  return lines.join('\n');
}

/** A plain text table: columns padded to their widest cell, two spaces apart. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** "5s", "3m", "2h", "4d" — how long ago a UNIX-seconds time was. */
export function formatAge(unixSeconds: number | null | undefined, nowMs: number): string {
  if (typeof unixSeconds !== 'number' || !Number.isFinite(unixSeconds)) return '-';
  const s = Math.max(0, Math.floor(nowMs / 1000 - unixSeconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}


/**
 * Prints a list the way every listing command does: the items as a JSON array with `--json`,
 * `no <noun>` when there are none, otherwise the table that `table` draws.
 */
export function writeList<T>(out: { write(s: string): unknown }, json: boolean | undefined, items: readonly T[], noun: string, table: (items: readonly T[]) => string): void {
  if (json) out.write(JSON.stringify(items, null, 2) + '\n');
  else if (items.length === 0) out.write(`no ${noun}\n`);
  else out.write(table(items));
}
