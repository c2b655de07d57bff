// The file piscina loads in each worker thread. It is CommonJS on purpose: piscina first tries `require()` on
// its worker file, and on Node ≥ 20.19 require() of an ES module (`require(esm)`) aborts the whole process
// ("IsGraphAsync must be used on an instantiated module") when the thread is terminated while the module graph
// is still loading — which happens whenever a pool is closed right after it was opened. This entry loads the
// real worker (codec-worker.js, an ES module) with import(), which fails softly instead.
type Run = typeof import('./codec-worker.js', { with: { 'resolution-mode': 'import' } }).default;
let loaded: Promise<Run> | undefined;

export = async function run(batch: Parameters<Run>[0]): Promise<unknown> {
  loaded ??= import('./codec-worker.js').then((m) => m.default);
  return (await loaded)(batch);
};
