#!/usr/bin/env node
// The `rockit` command: local engine commands, test-data generators and (later) API helpers.
// Start-up matters (a launcher's `rockit play` counts it in its time to play): only the module of the command
// being run is loaded (`rockit play` loads neither the API helpers, gamegen nor the patch tools); help, the
// version and unknown commands load every module, in the order below (the order of `rockit --help`).
import { Command } from 'commander';

type Register = (program: Command) => void;
type Loader = () => Promise<{ register: Register }>;

/** Each command module, with the top-level commands it registers. */
const MODULES: Array<{ commands: string[]; load: Loader }> = [
  { commands: ['image'], load: () => import('./commands/image.js') },
  { commands: ['patch'], load: () => import('./commands/patch.js') },
  { commands: ['gamegen'], load: () => import('./commands/gamegen.js') },
  { commands: ['login', 'logout'], load: () => import('./commands/login.js') },
  { commands: ['apps', 'builds'], load: () => import('./commands/apps.js') },
  { commands: ['deployments'], load: () => import('./commands/deployments.js') },
  { commands: ['push'], load: () => import('./commands/push.js') },
  { commands: ['tasks'], load: () => import('./commands/tasks.js') },
  { commands: ['install', 'update', 'verify', 'status', 'play'], load: () => import('./commands/launcher.js') },
  // keys.ts also adds `trace upload`.
  { commands: ['keys', 'trace'], load: () => import('./commands/keys.js') },
  { commands: ['trace'], load: () => import('./commands/trace.js') },
  { commands: ['faststart'], load: () => import('./commands/faststart.js') },
  { commands: ['users', 'roles', 'apikeys'], load: () => import('./commands/users.js') },
];

/** The modules to load for this command line: those naming its first word, none for the version, else all. */
function modulesFor(argv: string[]): typeof MODULES {
  const first = argv.find((a) => !a.startsWith('-'));
  if (first === undefined && argv.length === 1 && (argv[0] === '-V' || argv[0] === '--version')) return [];
  const named = MODULES.filter((m) => first !== undefined && m.commands.includes(first));
  return named.length > 0 ? named : MODULES;
}

async function main(): Promise<void> {
  const program = new Command();
  program.name('rockit').description('ROCKIT images, patches and test data on the command line').version('0.1.0');
  for (const m of await Promise.all(modulesFor(process.argv.slice(2)).map((x) => x.load()))) m.register(program);
  await program.parseAsync(process.argv);
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`rockit: ${message}\n`);
  process.exitCode = 1;
});
