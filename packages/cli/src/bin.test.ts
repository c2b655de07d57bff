// The `rockit` binary loads only the module of the command being run: every command is still there, with its
// subcommands, whichever way it is reached (the real compiled binary, as a user runs it).
import { describe, expect, it } from 'vitest';
import { runRockit } from './e2e/test-support/processes.js';

const TOP = ['image', 'patch', 'gamegen', 'login', 'logout', 'apps', 'builds', 'deployments', 'push', 'tasks', 'install', 'update', 'verify', 'status', 'play', 'keys', 'trace', 'faststart', 'roles', 'users', 'apikeys'];

describe('rockit (lazy command modules)', () => {
  it('lists every command in --help, in the order of before, and prints the version', async () => {
    const help = await runRockit(['--help'], {});
    expect(help.exitCode).toBe(0);
    const listed = [...help.stdout.split('Commands:')[1].matchAll(/^ {2}([a-z-]+)\b/gm)].map((m) => m[1]).filter((c) => c !== 'help');
    expect(listed).toEqual(TOP);
    const v = await runRockit(['--version'], {});
    expect(v.stdout.trim()).toBe('0.1.0');
  });

  it('reaches each command and its subcommands directly; an unknown one is refused', async () => {
    const trace = await runRockit(['trace', '--help'], {});
    for (const sub of ['upload', 'record', 'convert']) expect(trace.stdout).toContain(`  ${sub} `);
    for (const cmd of ['builds', 'logout', 'apikeys', 'play']) {
      const r = await runRockit([cmd, '--help'], {});
      expect(r.exitCode, cmd).toBe(0);
      expect(r.stdout).toContain(`Usage: rockit ${cmd}`);
    }
    const bad = await runRockit(['nosuch'], {});
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/unknown command 'nosuch'/);
  });
});
