// Shared by the benchmark scripts: what a run starts (child processes, temporary folders, anything
// else registered) is stopped and removed on every exit path — normal end, failure, Ctrl-C, SIGTERM
// and the run's time budget.
/* global fetch */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Starts guarding a run: signals stop it (exit 130), the budget of `maxSeconds` too (exit 3).
 * Returns the run's guard: `tempDir`, `removeDir`, `spawnNode`, `stopChild`, `onCleanup`, `cleanup`
 * (idempotent; awaits every child) and `done` (cleanup + budget cleared).
 */
export function createRunGuard({ name, maxSeconds }) {
  const children = new Set();
  const tempDirs = new Set();
  const finalizers = [];
  let cleaning;

  /** SIGTERM, then SIGKILL after 5 s; resolves when the child has exited. */
  async function stopChild(child) {
    if (child.exitCode !== null || child.signalCode !== null) {
      children.delete(child);
      return;
    }
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
    children.delete(child);
  }

  function cleanup() {
    cleaning ??= (async () => {
      await Promise.allSettled([...children].map(stopChild));
      for (const fn of finalizers) await fn().catch((e) => process.stderr.write(`cleanup: ${e.message}\n`));
      for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
    })();
    return cleaning;
  }

  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      process.stderr.write(`${sig}: stopping children\n`);
      cleanup().finally(() => process.exit(130));
    });
  }
  const budget = setTimeout(() => {
    process.stderr.write(`time budget of ${maxSeconds} s exceeded; stopping\n`);
    cleanup().finally(() => process.exit(3));
  }, maxSeconds * 1000);

  return {
    stopChild,
    cleanup,
    /** Runs `fn` during cleanup, after the children stopped and before the folders go. */
    onCleanup(fn) {
      finalizers.push(fn);
    },
    /** A new folder under the system's temp folder, removed at cleanup (or by `removeDir`). */
    tempDir(tag) {
      const d = mkdtempSync(join(os.tmpdir(), `rockit-bench-${name}-${tag}-`));
      tempDirs.add(d);
      return d;
    },
    removeDir(d) {
      rmSync(d, { recursive: true, force: true });
      tempDirs.delete(d);
    },
    /**
     * Spawns a node child with piped output: `out` is its whole stdout, `tail` the last 8 KB of
     * both streams; `done` resolves with `out` on exit code 0 and rejects otherwise.
     */
    spawnNode(args, env = process.env) {
      const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child);
      child.out = '';
      child.tail = '';
      const keep = (b) => {
        child.tail = (child.tail + b.toString()).slice(-8192);
      };
      child.stdout.on('data', (b) => {
        child.out += b.toString();
        keep(b);
      });
      child.stderr.on('data', keep);
      child.done = new Promise((res, rej) => {
        child.once('error', rej);
        child.once('exit', (code, signal) => {
          children.delete(child);
          if (code === 0) res(child.out);
          else rej(new Error(`${args.slice(0, 2).join(' ')} exited ${code ?? signal}:\n${child.tail}`));
        });
      });
      child.done.catch(() => undefined); // callers that do not await it see the exit otherwise
      return child;
    },
    /** Cleanup, then the budget timer is cleared (call at the very end). */
    async done() {
      clearTimeout(budget);
      await cleanup();
    },
  };
}

/** A free loopback port (tiny race between close and the child's bind; acceptable for a benchmark). */
export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** The environment for a server child: ours only (inherited ROCKIT_* removed so the run is reproducible). */
export function serverEnv(extra) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ROCKIT_')));
  return { ...env, ...extra };
}

/** Polls `GET /srv/v1/health` of a server child until it says ready; throws if it exits or 60 s pass. */
export async function waitHealthy(child, base) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}) before it was healthy:\n${child.tail}`);
    try {
      const r = await fetch(`${base}/srv/v1/health`);
      if (r.ok && (await r.json()).health?.ready === true) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`server not healthy after 60 s:\n${child.tail}`);
    await sleep(200);
  }
}
