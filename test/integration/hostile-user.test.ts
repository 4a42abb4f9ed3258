/**
 * The key hostile programs again, with gpuq (CLI, supervisor and job) running as an unprivileged
 * user: no cgroups can be made, so --memory is the monitor's memory watch, --pids is `ulimit -u`
 * (which binds a non-root user), and escapees are found by the environment marker and by the
 * supervisor being their subreaper. Needs root to create the user (`gpuqrun`) and runuser; skipped
 * otherwise.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { gpuq, makeHome, type Home } from '../helpers/cli.js';
import {
  ensureTestUser,
  expectGone,
  expectVerdict,
  liveProcess,
  pidFile,
  runHostile,
  startHostile,
  TEST_USER,
  waitForFile,
  waitHostile,
} from './hostile-helpers.js';

const canRun = ensureTestUser();
const homes: Home[] = [];
async function home(): Promise<Home> {
  const h = await makeHome(undefined, {}, { runAs: TEST_USER });
  homes.push(h);
  return h;
}
/**
 * A local node without the trust boundary: the escapee tests check the subreaper and the sweep
 * by the pid the escapee wrote, which inside the userns boundary's pid namespace is not the
 * node's (boundary.test.ts checks escapees there).
 */
async function homeWithoutBoundary(): Promise<Home> {
  const h = await makeHome({ nodes: { local: { transport: 'local', boundary: 'none' } } }, {}, { runAs: TEST_USER });
  homes.push(h);
  return h;
}
afterAll(async () => {
  await Promise.all(homes.splice(0).map((h) => h.cleanup()));
});

describe.runIf(canRun).concurrent(`hostile programs as the unprivileged user ${TEST_USER}`, () => {
  it('the job really runs as that user, without cgroups', async () => {
    const f = await runHostile(await home(), 'threads_env.py');
    expectVerdict(f, 'succeeded', undefined, 0);
    expect(f.status.cgroup).toBe(null);
    expect(f.status.subreaper).toBe(true);
  });

  it('timeout: 11', async () => {
    const f = await runHostile(await home(), 'sleep_forever.py', ['--timeout', '2s']);
    expectVerdict(f, 'timeout', undefined, 11);
  });

  it('CPU-time limit: limit/cpu_time, 14', async () => {
    const f = await runHostile(await home(), 'cpu_burn.py', ['--cpu-time', '1s', '--timeout', '30s']);
    expectVerdict(f, 'limit', 'cpu_time', 14);
  });

  it('a memory hog is stopped by the memory watch: oom/memory_watch, 12', async () => {
    const f = await runHostile(await home(), 'memory_hog.py', ['--memory', '64m', '--timeout', '30s']);
    expectVerdict(f, 'oom', 'memory_watch', 12);
    expect(f.monitor?.memoryWatchFired).toBe(true);
    expect(Number(f.monitor?.memoryWatchRssBytes)).toBeGreaterThan(64 << 20);
    expect(f.status.limitFired).toBe('memory');
  });

  it('copy-on-write memory shared by forked children is not counted once per process', async () => {
    const f = await runHostile(await home(), 'shared_memory.py', ['--memory', '128m', '--timeout', '30s']);
    expectVerdict(f, 'succeeded', undefined, 0);
    expect(f.monitor?.memoryWatchFired).toBe(false);
    expect(f.stdoutLog).toContain('shared memory survived');
    // The RSS sum did go over the limit: only the PSS check kept the job alive.
    expect(Number(f.monitor?.peakRssBytes)).toBeGreaterThan(128 << 20);
  });

  it('Python MemoryError: oom/memory_error, 12', async () => {
    const f = await runHostile(await home(), 'memory_error.py', ['--memory', '64m']);
    expectVerdict(f, 'oom', 'memory_error', 12);
  });

  it('a fork bomb under --pids (ulimit -u) stops: limit/pids, 14', async () => {
    const f = await runHostile(await home(), 'fork_bomb.py', ['--pids', '20', '--timeout', '20s']);
    expectVerdict(f, 'limit', 'pids', 14);
    expect(f.status.timedOut).toBe(false);
  });

  it('too many open files: limit/open_files, 14', async () => {
    const f = await runHostile(await home(), 'many_files.py', ['--files', '32']);
    expectVerdict(f, 'limit', 'open_files', 14);
  });

  it('file too large: limit/file_size, 14', async () => {
    const f = await runHostile(await home(), 'big_file.py', ['--file-size', '1m']);
    expectVerdict(f, 'limit', 'file_size', 14);
  });

  it('SIGSEGV: signaled/sigsegv, 15', async () => {
    const f = await runHostile(await home(), 'segfault.py');
    expectVerdict(f, 'signaled', 'sigsegv', 15);
  });

  it('a setsid + double-forked escapee with a cleared environment does not survive', async () => {
    const f = await runHostile(await homeWithoutBoundary(), 'escape.py', ['--arg', '--clear-env']);
    expectVerdict(f, 'succeeded', undefined, 0);
    await expectGone(pidFile(f.job, 'escaped.pid'));
    expect(Number(f.status.leftovers)).toBeGreaterThanOrEqual(1);
  });

  it('gpuq cancel takes a setsid + double-forked escapee with a cleared environment with it', async () => {
    const h = await homeWithoutBoundary();
    const { id, dir } = await startHostile(h, 'escape.py', [
      '--arg',
      '--stay',
      '--arg',
      '--clear-env',
      '--timeout',
      '60s',
    ]);
    await waitForFile(dir, 'escaped.pid');
    const c = await gpuq(h, ['cancel', id]);
    expect(c.code, c.stderr).toBe(0);
    const f = await waitHostile(h, id);
    expectVerdict(f, 'cancelled', undefined, 16);
    await expectGone(pidFile(f.job, 'escaped.pid'));
  });

  it('gpuq cancel: cancelled, 16, nothing left', async () => {
    const h = await home();
    const { id, pid, dir } = await startHostile(h, 'ignore_term.py', ['--timeout', '60s', '--grace', '1s']);
    await waitForFile(dir, 'ready');
    const c = await gpuq(h, ['cancel', id]);
    expect(c.code, c.stderr).toBe(0);
    const f = await waitHostile(h, id);
    expectVerdict(f, 'cancelled', undefined, 16);
    expect(liveProcess(pid)).toBe(false);
  });

  it('SIGKILL from outside: signaled/sigkill, 15', async () => {
    const h = await home();
    const { id, pid } = await startHostile(h, 'sleep_forever.py', ['--timeout', '60s']);
    process.kill(pid, 'SIGKILL');
    const f = await waitHostile(h, id);
    expectVerdict(f, 'signaled', 'sigkill', 15);
  });
});
