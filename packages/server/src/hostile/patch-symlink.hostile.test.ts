// Issue 8 item 11: `rockit patch make` from folders accepted a build that `rockit image build` refuses
// (an absolute symlink, a symlink leaving the root), and `rockit patch apply` then refused the patch:
// a patch that can never be applied. Every input (folder walk, tar, patch side) now goes through the
// one InputGuard of the engine. Through the real `rockit` binary.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, binariesBuilt } from './support.js';

function rockit(argv: string[]): Promise<{ code: number | null; out: string }> {
  const proc = spawn(process.execPath, [CLI_BIN, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  proc.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code) => resolve({ code, out }));
  });
}

describe.skipIf(!binariesBuilt())('hostile: one input validation for image build and patch make (issue 8 item 11)', () => {
  let tmp: string;
  let oldDir: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'rockit-hostile-patch-'));
    oldDir = path.join(tmp, 'old');
    await mkdir(path.join(oldDir, 'data'), { recursive: true });
    await writeFile(path.join(oldDir, 'game.bin'), 'old game');
    await writeFile(path.join(oldDir, 'data', 'level1'), 'level one');
  });
  afterAll(async () => rm(tmp, { recursive: true, force: true }));

  const cases: Array<{ label: string; link: string; target: string }> = [
    { label: 'an absolute symlink', link: 'passwd', target: '/etc/passwd' },
    { label: 'a symlink leaving the root', link: 'data/up', target: '../../outside' },
    { label: 'a symlink leaving the root through another symlink', link: 'data/esc', target: '../hop/x' },
  ];

  for (const c of cases) {
    it(`${c.label}: image build and patch make both refuse it, and no patch is written`, async () => {
      const newDir = path.join(tmp, `new-${cases.indexOf(c)}`);
      await mkdir(path.join(newDir, 'data'), { recursive: true });
      await writeFile(path.join(newDir, 'game.bin'), 'new game');
      await writeFile(path.join(newDir, 'data', 'level1'), 'level one');
      if (c.link === 'data/esc') await symlink('..', path.join(newDir, 'hop'));
      await symlink(c.target, path.join(newDir, c.link));

      const image = await rockit(['image', 'build', newDir, '--out', path.join(newDir + '-image')]);
      expect(image.code, image.out).not.toBe(0);

      const out = path.join(tmp, `patch-${cases.indexOf(c)}`);
      const made = await rockit(['patch', 'make', '--from', oldDir, '--to', newDir, '--out', out]);
      expect(made.code, made.out).not.toBe(0);
      expect(made.out).toMatch(/symlink/i);
      // Refused as a bad input (not a crash), before a patch was written.
      expect(made.out).not.toMatch(/at .*\.js:\d+/);
      expect(existsSync(path.join(out, 'patch.json'))).toBe(false);
    });
  }

  it('a clean folder still makes a patch that applies', async () => {
    const newDir = path.join(tmp, 'clean');
    await mkdir(path.join(newDir, 'data'), { recursive: true });
    await writeFile(path.join(newDir, 'game.bin'), 'new game');
    await writeFile(path.join(newDir, 'data', 'level1'), 'level one');
    await symlink('data/level1', path.join(newDir, 'current'));
    const out = path.join(tmp, 'patch-clean');
    const made = await rockit(['patch', 'make', '--from', oldDir, '--to', newDir, '--out', out]);
    expect(made.code, made.out).toBe(0);
    const applied = await rockit(['patch', 'apply', out, '--from', oldDir, '--out', path.join(tmp, 'applied')]);
    expect(applied.code, applied.out).toBe(0);
  });

  it('the old side goes through the same validation', async () => {
    const badOld = path.join(tmp, 'bad-old');
    await mkdir(badOld, { recursive: true });
    await writeFile(path.join(badOld, 'game.bin'), 'old');
    await symlink('/etc/hostname', path.join(badOld, 'abs'));
    const made = await rockit(['patch', 'make', '--from', badOld, '--to', oldDir, '--out', path.join(tmp, 'patch-bad-old')]);
    expect(made.code, made.out).not.toBe(0);
    expect(made.out).toMatch(/symlink/i);
  });
});
