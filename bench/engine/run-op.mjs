// Runs one engine or gamegen operation in its own process and prints one JSON line:
// { op, seconds, maxRssBytes, result }. The parent measures peak memory per operation this way.
// Usage: node run-op.mjs <op> '<json args>'   (ops: import, extract, make-patch, apply-patch, gamegen)
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [op, argsJson] = process.argv.slice(2);
const args = JSON.parse(argsJson ?? '{}');
// `engine`: another build of the engine (a folder holding its dist: index.js), e.g. a baseline to compare with.
const engine = args.engine ? await import(pathToFileURL(join(args.engine, 'index.js')).href) : await import('@rockit/engine');
const started = performance.now();
let result;
switch (op) {
  case 'import': {
    const r = await engine.buildImage({ input: args.input, outDir: args.outDir, threads: args.threads });
    result = { stats: r.stats, manifestName: r.manifestName };
    break;
  }
  case 'extract': {
    const r = await engine.extractImage({ source: args.image, outDir: args.outDir, threads: args.threads });
    result = { files: r.files, rawBytes: r.rawBytes };
    break;
  }
  case 'make-patch': {
    const r = await engine.makePatch({ from: args.from, to: args.to, outDir: args.outDir, ...(args.threads !== undefined ? { threads: args.threads } : {}) });
    result = { stats: r.stats };
    break;
  }
  case 'apply-patch': {
    const r = await engine.applyPatch({ patch: args.patch, fromDir: args.fromDir, outDir: args.outDir });
    result = { copiedBytes: r.copiedBytes, patchedBytes: r.patchedBytes };
    break;
  }
  case 'gamegen': {
    const { generateSeries } = await import('@rockit/gamegen');
    const d = await generateSeries({ seed: args.seed, sizeBytes: args.sizeBytes, versions: args.versions, outDir: args.outDir, tar: args.tar });
    result = { versions: d.versions };
    break;
  }
  default:
    throw new Error(`unknown op ${op}`);
}
const seconds = (performance.now() - started) / 1000;
// resourceUsage().maxRSS is in kilobytes.
process.stdout.write(JSON.stringify({ op, seconds, maxRssBytes: process.resourceUsage().maxRSS * 1024, result }) + '\n');
