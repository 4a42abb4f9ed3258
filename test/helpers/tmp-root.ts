/**
 * Setup file (vitest.config.ts, setupFiles) run before each test file: every temp
 * folder the file makes (os.tmpdir(), mkdtemp, the gpuq homes, job folders, sshd's keys, the
 * programs it submits) goes under one folder of its own, removed when the file ends, so a run
 * leaves nothing in /tmp even where a test forgot to clean up. Before removing it, processes still
 * working in it (a job, or its supervisor, whose test did not wait for it) are killed, and the file
 * fails naming them: no job outlives its test.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

// The real temp folder, remembered across files: where a worker runs several files one after
// another (isolate: false), TMPDIR names the previous file's folder, removed by now.
const parent = process.env.GPUQ_TEST_TMP_PARENT || process.env.TMPDIR || '/tmp';
process.env.GPUQ_TEST_TMP_PARENT = parent;
let root = '';

// Made once the file's tests are about to run (before its own hooks), not at import: collecting
// the tests (`vitest list`) runs no hooks, and must leave nothing behind.
beforeAll(() => {
  root = mkdtempSync(join(parent, 'gpuq-vitest-'));
  // Like /tmp: a job running as another user (runuser, an SSH node's account) reaches its files.
  chmodSync(root, 0o1777);
  process.env.TMPDIR = root;
});

/** Live processes (not zombies) whose working folder lies under `dir`, with their command lines. */
function processesIn(dir: string): Array<{ pid: number; cmd: string }> {
  const found: Array<{ pid: number; cmd: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cwd = readlinkSync(`/proc/${name}/cwd`);
      if (cwd !== dir && !cwd.startsWith(`${dir}/`)) continue;
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      if (/^\S+ \(.*\) [ZX] /s.test(stat)) continue;
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0').join(' ').trim();
      found.push({ pid: Number(name), cmd });
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

afterAll(async () => {
  if (root === '') return;
  // A job that just ended may still be finishing its supervisor's last steps: give it a moment.
  const end = Date.now() + 5000;
  let left = processesIn(root);
  while (left.length > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    left = processesIn(root);
  }
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  rmSync(root, { recursive: true, force: true });
  process.env.TMPDIR = parent;
  if (left.length > 0)
    throw new Error(
      `processes outlived this file's tests (killed now):\n${left.map((p) => `  ${p.pid} ${p.cmd}`).join('\n')}`,
    );
}, 30_000);
