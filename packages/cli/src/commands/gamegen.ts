import type { Command } from 'commander';

/** Registers the `rockit gamegen ...` commands. Placeholder until the gamegen commands land. */
export function register(_program: Command): void {}
