import type { Command } from 'commander';

/** Registers the `rockit image ...` commands. Placeholder until the image commands land. */
export function register(_program: Command): void {}
