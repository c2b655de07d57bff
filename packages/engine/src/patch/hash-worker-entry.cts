// The file piscina loads in each hashing thread. CommonJS on purpose, for the reason given in
// codec/codec-worker-entry.cts: require() of an ES module aborts the process when the pool is closed while the
// thread still loads it (applyPatch opens its pool before it knows whether the patch can be opened at all).
type Job = typeof import('./hash-worker.js', { with: { 'resolution-mode': 'import' } }).default;
let loaded: Promise<Job> | undefined;

export = async function run(req: Parameters<Job>[0]): Promise<unknown> {
  loaded ??= import('./hash-worker.js').then((m) => m.default);
  return (await loaded)(req);
};
