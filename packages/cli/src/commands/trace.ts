// `rockit trace record|convert`: record a program's reads under strace as a trace; convert NDJSON ⇄ binary.
// (`rockit trace upload` lives with the API commands; every command here takes both forms, by content.)
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { compress } from 'zstd-napi';
import { encodeTrace, encodeTraceNdjson, summarizeTrace, tracePathProblem, type Trace } from '@rockit/engine';
import { STRACE_ARGS, StraceReads } from '../faststart/strace-reads.js';
import { readTraceFileWithForm } from '../faststart/trace-files.js';

type Form = 'binary' | 'ndjson';

function parseForm(v: string): Form {
  if (v !== 'binary' && v !== 'ndjson') throw new Error(`--format must be binary or ndjson, not ${JSON.stringify(v)}`);
  return v;
}

function encode(trace: Trace, form: Form, zstd: boolean): Uint8Array {
  if (form === 'binary') return zstd ? compress(encodeTrace(trace)) : encodeTrace(trace);
  const text = encodeTraceNdjson(trace);
  return zstd ? compress(text) : text;
}

/** The `trace` command group (created once; other modules add subcommands to the same group). */
export function traceGroup(program: Command): Command {
  return program.commands.find((c) => c.name() === 'trace') ?? program.command('trace').description('record, convert and upload play-session traces');
}

function runStrace(outFile: string, cmd: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('strace', [...STRACE_ARGS, '-o', outFile, '--', ...cmd], { stdio: 'inherit' });
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? new Error('strace not found: install it (Debian: apt-get install strace)') : err),
    );
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

interface RecordOptions {
  root: string;
  out: string;
  format?: string;
  org: string;
  app: string;
  build: string;
  dxf: string;
  session?: string;
  firstSession?: boolean;
  json?: boolean;
}

/** Registers `rockit trace record` and `rockit trace convert`. */
export function register(program: Command): void {
  const trace = traceGroup(program);

  trace
    .command('record')
    .description('run a program under strace (Linux) and write its reads of files under --root as a trace')
    .requiredOption('--root <dir>', 'the game folder: reads of files beneath it are recorded')
    .requiredOption('--out <file>', 'trace file to write')
    .option('--format <form>', 'binary or ndjson (default: ndjson when --out ends in .ndjson, else binary)')
    .option('--org <name>', 'org name for the header', 'local')
    .option('--app <name>', 'app name for the header', 'local')
    .option('--build <id>', 'build id for the header (0 = unknown)', '0')
    .option('--dxf <name>', 'image variant for the header', '')
    .option('--session <id>', 'session id (default: random)')
    .option('--first-session', "mark as the player's first session")
    .option('--json', 'print the summary as JSON')
    .argument('<command...>', 'the program and its arguments (after --)')
    .action(async (command: string[], opts: RecordOptions) => {
      const root = await realpath(opts.root);
      if (!(await stat(root)).isDirectory()) throw new Error(`--root ${opts.root} is not a folder`);
      const form = opts.format ? parseForm(opts.format) : opts.out.endsWith('.ndjson') ? 'ndjson' : 'binary';
      const buildId = Number(opts.build);
      if (!Number.isSafeInteger(buildId) || buildId < 0) throw new Error('--build must be an integer ≥ 0');
      const work = await mkdtemp(join(tmpdir(), 'rockit-strace-'));
      try {
        const straceOut = join(work, 'strace.txt');
        const exitCode = await runStrace(straceOut, command);
        const reads = new StraceReads((abs) => {
          const rel = relative(root, abs);
          if (rel === '' || rel.startsWith('..') || rel.startsWith(sep)) return null;
          const p = rel.split(sep).join('/');
          return tracePathProblem(p) ? null : p;
        });
        const lines = createInterface({ input: createReadStream(straceOut), crlfDelay: Infinity });
        for await (const line of lines) reads.line(line);
        const sizes = new Map<string, number | undefined>();
        const { records: raw, startUnixSeconds, skippedLines } = reads.finish((rel) => sizes.get(rel));
        for (const r of raw) {
          if (!sizes.has(r.path)) {
            const s = await stat(join(root, r.path)).catch(() => undefined);
            sizes.set(r.path, s?.isFile() ? s.size : undefined);
          }
        }
        const { records } = reads.finish((rel) => sizes.get(rel));
        const t: Trace = {
          header: {
            orgName: opts.org,
            appName: opts.app,
            buildId,
            dxfName: opts.dxf,
            sessionId: opts.session ?? Math.random().toString(16).slice(2, 18).padEnd(16, '0'),
            firstSession: opts.firstSession === true,
            startTimeUnixSeconds: Math.floor(startUnixSeconds),
          },
          records,
        };
        await writeFile(opts.out, encode(t, form, false));
        const s = summarizeTrace(t);
        const summary = { out: opts.out, format: form, ...s, skippedLines, exitCode };
        process.stdout.write(
          opts.json ? JSON.stringify(summary) + '\n' : `${opts.out}: ${s.records} reads of ${s.paths} files, ${s.bytesRead} bytes in ${s.durationMs} ms (program exit ${exitCode})\n`,
        );
        if (exitCode !== 0) process.exitCode = exitCode;
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    });

  trace
    .command('convert')
    .description('convert a trace between the binary and the NDJSON form (input recognised by content)')
    .argument('<in>', 'trace file (binary or NDJSON, plain or zstd-compressed)')
    .requiredOption('--out <file>', 'file to write')
    .option('--to <form>', 'binary or ndjson (default: the other form than the input)')
    .option('--zstd', 'wrap the output in one zstd frame')
    .option('--json', 'print the summary as JSON')
    .action(async (input: string, opts: { out: string; to?: string; zstd?: boolean; json?: boolean }) => {
      const { trace: t, form } = await readTraceFileWithForm(input);
      const to: Form = opts.to ? parseForm(opts.to) : form === 'ndjson' ? 'binary' : 'ndjson';
      const bytes = encode(t, to, opts.zstd === true);
      await writeFile(opts.out, bytes);
      const s = summarizeTrace(t);
      process.stdout.write(opts.json ? JSON.stringify({ out: opts.out, format: to, bytes: bytes.length, ...s }) + '\n' : `${opts.out}: ${to}, ${bytes.length} bytes, ${s.records} records\n`);
    });
}
