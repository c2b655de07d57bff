// Child process for the in-place crash test: applies a patch in place and lets the test hook
// SIGKILL this process at the step named on the command line.
import { applyPatchInPlace, type InPlaceStep } from '../in-place.js';

const [patch, dir, step] = process.argv.slice(2);
await applyPatchInPlace({ patch, dir, failAt: step === 'none' ? undefined : (step as InPlaceStep) });
process.stdout.write('done\n');
