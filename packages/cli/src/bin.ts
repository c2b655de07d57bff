#!/usr/bin/env node
// The `rockit` command: local engine commands, test-data generators and (later) API helpers.
import { Command } from 'commander';
import { register as registerImage } from './commands/image.js';
import { register as registerPatch } from './commands/patch.js';
import { register as registerGamegen } from './commands/gamegen.js';

const program = new Command();
program.name('rockit').description('ROCKIT images, patches and test data on the command line').version('0.1.0');
registerImage(program);
registerPatch(program);
registerGamegen(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`rockit: ${message}\n`);
  process.exitCode = 1;
});
