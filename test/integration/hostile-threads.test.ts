import { afterAll, describe, expect, it } from 'vitest';
import { makeHome, type Home, NO_BOUNDARY_CONFIG, until } from '../helpers/cli.js';
import { anyThreadLive, ensureTestUser, expectVerdict, pidFile, runHostile, TEST_USER } from '../helpers/hostile.js';

const canRunAsUser = ensureTestUser();
const homes: Home[] = [];
// The lingerer is found by the pid it wrote, not the node's inside the userns boundary's pid namespace.
async function home(runAs?: string): Promise<Home> {
  const h = await makeHome(NO_BOUNDARY_CONFIG, {}, { ...(runAs === undefined ? {} : { runAs }), autoCleanup: false });
  homes.push(h);
  return h;
}
afterAll(async () => {
  await Promise.all(homes.splice(0).map((h) => h.cleanup()));
});

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
