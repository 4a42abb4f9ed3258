/**
 * A job whose main thread exits with a C-level pthread_exit while another thread runs on
 * (test/fixtures/hostile/main_thread_exit.py): /proc/PID/stat says Z, yet the process lives and
 * holds memory. Through the real CLI, as the test runner (root: memory and pids cgroups where the
 * machine allows them) and as the unprivileged user of hostile-user.test.ts (no cgroups: --memory
 * is the monitor's memory watch): a memory holder gets `oom`, and a lingerer that left the job's
 * session is gone once the verdict is in.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { makeHome, type Home, until } from '../helpers/cli.js';
import { ensureTestUser, expectVerdict, pidFile, runHostile, TEST_USER } from '../helpers/hostile.js';

const canRunAsUser = ensureTestUser();
const homes: Home[] = [];
// The lingerer is found by the pid it wrote: inside the userns trust boundary's pid namespace that
// pid is not the node's, so these run on a node without a boundary (boundary.test.ts covers that).
const NO_BOUNDARY = { nodes: { local: { transport: 'local', boundary: 'none' } } };
async function home(runAs?: string): Promise<Home> {
  const h = await makeHome(NO_BOUNDARY, {}, { ...(runAs === undefined ? {} : { runAs }), autoCleanup: false });
  homes.push(h);
  return h;
}
afterAll(async () => {
  await Promise.all(homes.splice(0).map((h) => h.cleanup()));
});

/** The state letter of a /proc stat file, or null when gone. */
function stateOf(path: string): string | null {
  try {
    const text = readFileSync(path, 'latin1');
    return text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

/** Whether any thread of the process runs: a Z main thread with a live thread is a live process. */
function anyThreadLive(pid: number): boolean {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return false;
  }
  return tids.some((tid) => {
    const s = stateOf(`/proc/${pid}/task/${tid}/stat`);
    return s !== null && s !== 'Z' && s !== 'X' && s !== 'x';
  });
}

const FIXTURE = 'main_thread_exit.py';
const HOLD = ['--arg', 'hold', '--arg', '256', '--arg', '20', '--memory', '100m', '--timeout', '60s'];

const users: { who: string; runAs?: string; memoryCause: string | undefined }[] = [
  // as root the memory cgroup may catch it first (cause `cgroup`), else the memory watch
  { who: 'as the test runner', memoryCause: undefined },
  ...(canRunAsUser
    ? [{ who: `as the unprivileged user ${TEST_USER}`, runAs: TEST_USER, memoryCause: 'memory_watch' }]
    : []),
];

describe.concurrent.each(users)('a job whose main thread has exited, $who', ({ runAs, memoryCause }) => {
  it('holding 256 MiB under --memory 100m is oom, 12', async () => {
    const f = await runHostile(await home(runAs), FIXTURE, HOLD);
    expect(f.stdoutLog).toContain('main thread state: Z');
    expectVerdict(f, 'oom', memoryCause, 12);
    if (memoryCause === 'memory_watch') {
      expect(f.monitor?.memoryWatchFired).toBe(true);
      expect(Number(f.monitor?.memoryWatchRssBytes)).toBeGreaterThan(100 << 20);
      expect(f.status.limitFired).toBe('memory');
    }
    expect(f.stdoutLog).not.toContain('released');
  }, 90_000);

  it.each([[[]], [['--arg', '--clear-env']]])(
    'a setsid + double-forked lingerer %j does not outlive the verdict',
    async (extra: string[]) => {
      const f = await runHostile(await home(runAs), FIXTURE, ['--arg', 'linger', ...extra, '--timeout', '60s']);
      expect(f.stdoutLog).toMatch(/lingerer \d+: main thread state Z/);
      expectVerdict(f, 'succeeded', undefined, 0);
      const pid = pidFile(f.job, 'lingerer.pid');
      const gone = await until(() => !anyThreadLive(pid), 3000);
      if (!gone) process.kill(pid, 'SIGKILL'); // leave no lingerer behind a failure
      expect(gone, `pid ${pid} outlived the verdict`).toBe(true);
      expect(Number(f.status.leftovers)).toBeGreaterThanOrEqual(1);
    },
    90_000,
  );
});
