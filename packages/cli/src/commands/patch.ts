import type { Command } from 'commander';

/** Registers the `rockit patch ...` commands. Placeholder until the patch commands land. */
export function register(_program: Command): void {}
