// The "engine alone" side of the pipeline benchmark, run in its own process so it competes for the same cores as
// the server does: buildImage(tar → image folder), then a recursive copy of that folder to a second folder (what
// publishing to an fs origin amounts to). Usage: node engine-op.mjs <engine index.js> <tar> <outDir> <copyDir>
// Prints one JSON line {buildSeconds, copySeconds, cpuSeconds (whole process, all threads), stats} on stdout; exits non-zero on any error.
import { cp } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import process from 'node:process';
import { performance } from 'node:perf_hooks';

const [engineIndex, tar, outDir, copyDir] = process.argv.slice(2);
if (!copyDir) {
  process.stderr.write('usage: engine-op.mjs <engine index.js> <tar> <outDir> <copyDir>\n');
  process.exit(2);
}
const { buildImage } = await import(pathToFileURL(engineIndex).href);
const t0 = performance.now();
const result = await buildImage({ input: tar, outDir });
const t1 = performance.now();
await cp(outDir, copyDir, { recursive: true });
const t2 = performance.now();
const ru = process.resourceUsage();
const cpuSeconds = (ru.userCPUTime + ru.systemCPUTime) / 1e6;
process.stdout.write(JSON.stringify({ buildSeconds: (t1 - t0) / 1000, copySeconds: (t2 - t1) / 1000, cpuSeconds, stats: result.stats }) + '\n');
