// Reading trace files for the CLI: any accepted form (binary or NDJSON, plain or zstd), recognised by content.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_TRACE_LIMITS, decodeAnyTrace, type Trace, type TraceForm } from '@rockit/engine';

export interface LoadedTrace {
  file: string;
  trace: Trace;
}

/** Reads one trace file (refused before reading when larger than the trace file limit). */
export async function readTraceFile(file: string): Promise<Trace> {
  return (await readTraceFileWithForm(file)).trace;
}

/** readTraceFile, also saying which form the file had. */
export async function readTraceFileWithForm(file: string): Promise<{ trace: Trace; form: TraceForm; zstdWrapped: boolean }> {
  const s = await stat(file);
  if (!s.isFile()) throw new Error(`${file}: not a file`);
  if (s.size > DEFAULT_TRACE_LIMITS.maxFileBytes) throw new Error(`${file}: larger than ${DEFAULT_TRACE_LIMITS.maxFileBytes} bytes, not a trace`);
  try {
    return decodeAnyTrace(await readFile(file));
  } catch (err) {
    throw new Error(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Traces named on the command line: files, or folders whose files are all read (in name order, skipping hidden
 * files and `*.json` descriptions such as gamegen's sessions.json; `.ndjson` files are traces).
 */
export async function loadTraces(items: readonly string[]): Promise<LoadedTrace[]> {
  const files: string[] = [];
  for (const item of items) {
    const s = await stat(item);
    if (s.isDirectory()) {
      const names = (await readdir(item)).filter((n) => !n.startsWith('.') && !(n.endsWith('.json') && !n.endsWith('.ndjson'))).sort();
      for (const n of names) if ((await stat(join(item, n))).isFile()) files.push(join(item, n));
    } else files.push(item);
  }
  const out: LoadedTrace[] = [];
  for (const file of files) out.push({ file, trace: await readTraceFile(file) });
  return out;
}
