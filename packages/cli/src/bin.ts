#!/usr/bin/env node
// The `rockit` command: local engine commands, test-data generators and (later) API helpers.
import { Command } from 'commander';
import { register as registerImage } from './commands/image.js';
import { register as registerPatch } from './commands/patch.js';
import { register as registerGamegen } from './commands/gamegen.js';
import { register as registerLogin } from './commands/login.js';
import { register as registerApps } from './commands/apps.js';
import { register as registerDeployments } from './commands/deployments.js';
import { register as registerPush } from './commands/push.js';
import { register as registerTasks } from './commands/tasks.js';
import { register as registerLauncher } from './commands/launcher.js';
import { register as registerKeys } from './commands/keys.js';
import { register as registerTrace } from './commands/trace.js';
import { register as registerFaststart } from './commands/faststart.js';
import { register as registerUsers } from './commands/users.js';

const program = new Command();
program.name('rockit').description('ROCKIT images, patches and test data on the command line').version('0.1.0');
registerImage(program);
registerPatch(program);
registerGamegen(program);
registerLogin(program);
registerApps(program);
registerDeployments(program);
registerPush(program);
registerTasks(program);
registerLauncher(program);
registerKeys(program);
registerTrace(program);
registerFaststart(program);
registerUsers(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`rockit: ${message}\n`);
  process.exitCode = 1;
});
