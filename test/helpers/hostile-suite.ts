/**
 * The hostile tests, declared once per mode by hostile.test.ts and hostile-user.test.ts (a file
 * each, so that vitest's two workers run them side by side). Hostile programs under the real
 * supervisor, run by the real CLI, as the user running the tests (root in CI: memory and pids
 * cgroups), and as an unprivileged user (`gpuqrun`, through runuser: no cgroups, so --memory is the monitor's memory watch, --pids is
 * `ulimit -u`, and escapees are found by the environment marker and the subreaper). Each test
 * asserts the verdict class and cause, the exit code of `submit --wait` or `wait`, and that no
 * process of the job is left alive (a /proc scan for the GPUQ_JOB_ID marker, plus the pid an
 * escapee wrote). A mode this machine cannot give (no root, no writable cgroups) fails its tests
 * unless GPUQ_TEST_ALLOW_SKIP=1.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { need, type Need } from './capability.js';
import { gpuq, type Home, makeHome, NO_BOUNDARY_CONFIG, SYSTEM_PYTHON } from './cli.js';
import { fakeNvidiaSmi } from './nvidia-smi.js';
import {
  canMakeCgroup,
  ensureTestUser,
  expectGone,
  expectVerdict,
  jobCgroups,
  jobProcesses,
  liveProcess,
  pidFile,
  readJobFile,
  runHostile,
  startHostile,
  TEST_USER,
  waitForFile,
  waitHostile,
} from './hostile.js';

const isRoot = process.getuid?.() === 0;

/** A user gpuq runs as in the hostile tests, and what that user can and cannot be given. */
export interface Mode {
  label: string;
  /** gpuq runs as this user (through runuser), or as the test runner. */
  runAs?: string;
  /** Root: the supervisor bounds memory and pids with cgroups, so the expected causes differ. */
  privileged: boolean;
  /** What the whole mode needs (root to create and become the unprivileged user). */
  needs: Need;
  /** What the cgroup cases of a privileged mode need. */
  cgroups: Need;
  /** --pids for the fork bomb: `ulimit -u` counts every task of the user (gpuq's own threads too). */
  bombPids: string;
}

const NONE = need(true, 'nothing');
/** The two modes: the test runner (root in CI, with cgroups) and an unprivileged user. */
export const MODES: Mode[] = [
  {
    label: isRoot ? 'the test runner (root)' : 'the test runner (unprivileged)',
    privileged: isRoot,
    needs: NONE,
    cgroups: isRoot ? need(canMakeCgroup('memory') && canMakeCgroup('pids'), 'writable memory and pids cgroups') : NONE,
    bombPids: isRoot ? '20' : '60',
  },
  {
    label: `the unprivileged user ${TEST_USER}`,
    runAs: TEST_USER,
    privileged: false,
    needs: need(ensureTestUser(), `root, to create the user ${TEST_USER} and run gpuq as it`),
    cgroups: NONE,
    bombPids: '60',
  },
];

/**
 * Declares the hostile tests for one mode (call at a test file's top level): one file per mode,
 * so vitest's two workers run the modes side by side. The fork bomb runs after the rest of its
 * file, alone among that user's jobs (`ulimit -u` counts every task of the user).
 */
export function hostileSuite(mode: Mode): void {
  const homes: Home[] = [];
  afterAll(async () => {
    await Promise.all(homes.splice(0).map((h) => h.cleanup()));
  });
  /** A fresh home for the mode (owned by its user). */
  async function homeFor(m: Mode, extraEnv: NodeJS.ProcessEnv = {}): Promise<Home> {
    m.needs.check();
    const h = await makeHome(undefined, extraEnv, { runAs: m.runAs, autoCleanup: false });
    homes.push(h);
    return h;
  }

  /**
   * The escapee tests check the sweep by the pid the escapee wrote. Inside the userns trust
   * boundary's pid namespace that pid is not the node's, so as the unprivileged user they run on a
   * node without a boundary (test/integration/boundary.test.ts checks escapees inside it).
   */
  async function escapeeHomeFor(m: Mode): Promise<Home> {
    m.needs.check();
    const config = m.privileged ? undefined : NO_BOUNDARY_CONFIG;
    const h = await makeHome(config, {}, { runAs: m.runAs, autoCleanup: false });
    homes.push(h);
    return h;
  }

  describe.concurrent.each([mode])('hostile programs as $label', (mode) => {
    const home = () => homeFor(mode);
    const escapeeHome = () => escapeeHomeFor(mode);

    it('the job runs as that user, adopted by its supervisor (subreaper); without cgroups when unprivileged', async () => {
      const f = await runHostile(await home(), 'threads_env.py');
      expectVerdict(f, 'succeeded', undefined, 0);
      expect(f.status.subreaper).toBe(true);
      if (!mode.privileged) expect(f.status.cgroup).toBe(null);
    });
    it('a program that never ends is stopped at the wall-clock limit: timeout, 11', async () => {
      const f = await runHostile(await home(), 'sleep_forever.py', ['--timeout', '2s']);
      expectVerdict(f, 'timeout', undefined, 11);
      expect(f.status).toMatchObject({ timedOut: true, limitFired: 'timeout', exitCode: 143, killedAfterGrace: false });
    });

    it('a program that ignores SIGTERM is killed after the grace period: timeout, 11', async () => {
      // 4 s: under load the interpreter may need seconds to install its handler.
      const f = await runHostile(await home(), 'ignore_term.py', ['--timeout', '4s', '--grace', '1s']);
      expect(f.stdoutLog).toContain('ignoring SIGTERM');
      expectVerdict(f, 'timeout', undefined, 11);
      expect(f.status).toMatchObject({ timedOut: true, killedAfterGrace: true, exitCode: 137 });
      expect(f.job.verdict?.summary).toMatch(/ignored SIGTERM/);
    });

    it('a CPU burner is killed at --cpu-time: limit/cpu_time, 14', async () => {
      const f = await runHostile(await home(), 'cpu_burn.py', ['--cpu-time', '1s', '--timeout', '30s']);
      expectVerdict(f, 'limit', 'cpu_time', 14);
      expect(f.status).toMatchObject({ limitFired: 'cpu', timedOut: false });
      expect(Number(f.status.cpuSeconds)).toBeGreaterThanOrEqual(0.8); // times(2) ticks round down a little
    });

    it('a memory hog under --memory is killed for memory: oom, 12', async () => {
      const f = await runHostile(await home(), 'memory_hog.py', ['--memory', '64m', '--timeout', '30s']);
      if (mode.privileged) {
        mode.cgroups.check();
        expectVerdict(f, 'oom', 'cgroup', 12);
        expect(Number(f.status.oomKills)).toBeGreaterThanOrEqual(1);
        expect(Number(f.status.memoryPeakBytes)).toBeGreaterThan(40 << 20);
        expect(f.status.cgroup).not.toBe(null);
        // The job's cgroups are removed when it ends.
        expect(jobCgroups(f.job.id)).toEqual([]);
      } else {
        expectVerdict(f, 'oom', 'memory_watch', 12);
        expect(f.monitor?.memoryWatchFired).toBe(true);
        expect(Number(f.monitor?.memoryWatchRssBytes)).toBeGreaterThan(64 << 20);
        expect(f.status.limitFired).toBe('memory');
      }
      expect(Number(f.monitor?.peakRssBytes)).toBeGreaterThan(8 << 20);
    });

    it('copy-on-write memory shared by forked children does not count once per process', async () => {
      const f = await runHostile(await home(), 'shared_memory.py', ['--memory', '128m', '--timeout', '30s']);
      expectVerdict(f, 'succeeded', undefined, 0);
      expect(f.stdoutLog).toContain('shared memory survived');
      if (!mode.privileged) {
        expect(f.monitor?.memoryWatchFired).toBe(false);
        // The RSS sum did go over the limit: only the PSS check kept the job alive.
        expect(Number(f.monitor?.peakRssBytes)).toBeGreaterThan(128 << 20);
      }
    });

    it('a Python MemoryError under --memory is a memory verdict: oom/memory_error, 12', async () => {
      const f = await runHostile(await home(), 'memory_error.py', ['--memory', '64m']);
      expectVerdict(f, 'oom', 'memory_error', 12);
    });

    it('SIGSEGV: signaled/sigsegv, 15', async () => {
      const f = await runHostile(await home(), 'segfault.py');
      expectVerdict(f, 'signaled', 'sigsegv', 15);
      expect(f.status).toMatchObject({ exitCode: 139, signal: 11 });
    });

    it('SIGABRT: signaled/sigabrt, 15', async () => {
      const f = await runHostile(await home(), 'abort.py');
      expectVerdict(f, 'signaled', 'sigabrt', 15);
      expect(f.status).toMatchObject({ exitCode: 134, signal: 6 });
    });

    it('a full disk: limit/disk_full, 14', async () => {
      // A 1 MiB tmpfs where we may mount one; /dev/full (always ENOSPC) elsewhere.
      let target = '/dev/full';
      const mnt = mkdtempSync(join(tmpdir(), 'gpuq-tmpfs-'));
      let mounted = false;
      if (isRoot) {
        try {
          execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=1777', 'tmpfs', mnt], { stdio: 'ignore' });
          mounted = true;
          target = join(mnt, 'fill.bin');
        } catch {
          /* no mount here */
        }
      }
      try {
        const f = await runHostile(await home(), 'disk_full.py', ['--arg', target]);
        expectVerdict(f, 'limit', 'disk_full', 14);
      } finally {
        if (mounted) execFileSync('umount', [mnt]);
        rmSync(mnt, { recursive: true, force: true });
      }
    });

    it('too many open files under --files: limit/open_files, 14', async () => {
      const f = await runHostile(await home(), 'many_files.py', ['--files', '32']);
      expectVerdict(f, 'limit', 'open_files', 14);
    });

    it('a file over --file-size: limit/file_size, 14', async () => {
      const f = await runHostile(await home(), 'big_file.py', ['--file-size', '1m']);
      expectVerdict(f, 'limit', 'file_size', 14);
    });

    it('a missing module: failed/missing_module, 10, and the hint names the module', async () => {
      const f = await runHostile(await home(), 'missing_module.py');
      expectVerdict(f, 'failed', 'missing_module', 10);
      expect([f.job.verdict?.summary, ...(f.job.verdict?.hints ?? [])].join('\n')).toContain('gpuq_no_such_module_xyz');
    });

    it('a syntax error: failed/syntax_error, 10', async () => {
      const f = await runHostile(await home(), 'syntax_error.py');
      expectVerdict(f, 'failed', 'syntax_error', 10);
    });

    it('a setsid + double-forked grandchild does not outlive a job that exits 0', async () => {
      const f = await runHostile(await escapeeHome(), 'escape.py');
      expectVerdict(f, 'succeeded', undefined, 0);
      await expectGone(pidFile(f.job, 'escaped.pid'));
      expect(Number(f.status.leftovers)).toBeGreaterThanOrEqual(1);
    });

    it('…not even one that also cleared its environment (no marker to find it by)', async () => {
      const f = await runHostile(await escapeeHome(), 'escape.py', ['--arg', '--clear-env']);
      expectVerdict(f, 'succeeded', undefined, 0);
      await expectGone(pidFile(f.job, 'escaped.pid'));
    });

    it('a timeout warns the setsid + double-forked escapee with SIGTERM too, then takes it', async () => {
      const f = await runHostile(await escapeeHome(), 'escape.py', [
        '--arg',
        '--stay',
        '--arg',
        '--note-term',
        '--timeout',
        '2s',
      ]);
      expectVerdict(f, 'timeout', undefined, 11);
      await expectGone(pidFile(f.job, 'escaped.pid'));
      expect(readFileSync(join(f.job.remote?.dir as string, 'work', 'escaped.term'), 'utf8')).toBe('SIGTERM\n');
    });

    it.each([
      ['', []],
      [' with a cleared environment', ['--arg', '--clear-env']],
    ])('gpuq cancel takes the setsid + double-forked escapee%s with it', async (_, extra) => {
      const h = await escapeeHome();
      const { id, dir } = await startHostile(h, 'escape.py', ['--arg', '--stay', ...extra, '--timeout', '60s']);
      await waitForFile(dir, 'escaped.pid');
      const c = await gpuq(h, ['cancel', id]);
      expect(c.code, c.stderr).toBe(0);
      const f = await waitHostile(h, id);
      expectVerdict(f, 'cancelled', undefined, 16);
      await expectGone(pidFile(f.job, 'escaped.pid'));
    });

    // Only a cgroup sees a child's OOM kill while the main process lives on.
    if (mode.privileged)
      it('a child OOM-killed while the main process exits 0 is reported: succeeded/child_oom, 0', async () => {
        mode.cgroups.check();
        const f = await runHostile(await home(), 'child_oom.py', ['--memory', '64m', '--timeout', '30s']);
        expectVerdict(f, 'succeeded', 'child_oom', 0);
        expect(f.stdoutLog).toMatch(/child ended with -9/);
        expect(Number(f.status.oomKills)).toBeGreaterThanOrEqual(1);
        expect(f.job.verdict?.evidence.join('\n')).toMatch(/OOM kill/);
      });

    it('SIGKILL from outside: signaled/sigkill, 15 from gpuq wait', async () => {
      const h = await home();
      const { id, pid } = await startHostile(h, 'sleep_forever.py', ['--timeout', '60s']);
      process.kill(pid, 'SIGKILL');
      const f = await waitHostile(h, id);
      expectVerdict(f, 'signaled', 'sigkill', 15);
      expect(f.status).toMatchObject({ exitCode: 137, timedOut: false, cancelled: false, limitFired: null });
    });

    // The recorded pid is the node's view of the main process; inside the userns boundary that is
    // the namespace's first process (unshare), which does not pass SIGTERM on: signal it without one.
    it('SIGTERM from outside: signaled/sigterm, 15 — not a cancel', async () => {
      const h = await escapeeHome();
      const { id, pid } = await startHostile(h, 'sleep_forever.py', ['--timeout', '60s']);
      process.kill(pid, 'SIGTERM');
      const f = await waitHostile(h, id);
      expectVerdict(f, 'signaled', 'sigterm', 15);
      expect(f.status).toMatchObject({ exitCode: 143, cancelled: false });
    });

    it('gpuq cancel: cancelled, 16, and the tree is gone (a TERM-ignoring main, after the grace)', async () => {
      const h = await home();
      const { id, pid, dir } = await startHostile(h, 'ignore_term.py', ['--timeout', '60s', '--grace', '1s']);
      await waitForFile(dir, 'ready');
      const c = await gpuq(h, ['cancel', id]);
      expect(c.code, c.stderr).toBe(0);
      const f = await waitHostile(h, id);
      expectVerdict(f, 'cancelled', undefined, 16);
      expect(f.status).toMatchObject({ cancelled: true, killedAfterGrace: true });
      expect(liveProcess(pid)).toBe(false);
    });

    it("thread-pool variables default to the job's CPU share; --env wins", async () => {
      const cores = Number(execFileSync('nproc').toString().trim());
      const f = await runHostile(await home(), 'threads_env.py', ['--env', 'OMP_NUM_THREADS=7']);
      expectVerdict(f, 'succeeded', undefined, 0);
      expect(f.stdoutLog).toContain('OMP_NUM_THREADS 7\n');
      for (const v of ['MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'NUMEXPR_NUM_THREADS'])
        expect(f.stdoutLog).toContain(`${v} ${cores}\n`);
    });

    // The stand-in nvidia-smi lives in a folder only the test runner reads.
    if (mode.runAs === undefined)
      it('samples.jsonl and monitor.json record the tree, and the GPU through nvidia-smi', async () => {
        // A stand-in nvidia-smi on PATH reports one GPU and the job's main pid as a compute app.
        const { bin, pidFile: pidPath } = await fakeNvidiaSmi({ memMiB: 1234, utilPct: 37, jobMemMiB: 1000 });
        const h = await homeFor(mode, { PATH: `${bin}:${dirname(SYSTEM_PYTHON)}:${process.env.PATH ?? ''}` });
        const prog = join(bin, 'gpu_job.py');
        mkdirSync(bin, { recursive: true });
        writeFileSync(
          prog,
          `import os, time\nopen(${JSON.stringify(pidPath)}, "w").write(str(os.getpid()))\nx = bytearray(20 << 20)\ntime.sleep(3.5)\n`,
        );
        try {
          // The local node finds the stand-in's GPU; a job that asks for none would not see it.
          const r = await gpuq(h, ['submit', prog, '--gpus', '1', '--wait', '--json']);
          expect(r.code, r.stderr).toBe(0);
          const job = JSON.parse(r.stdout);
          const samples = readFileSync(join(job.remote.dir, 'samples.jsonl'), 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l));
          expect(samples.length).toBeGreaterThanOrEqual(8); // 10 Hz in the first second
          const withGpu = samples.filter((s) => s.gpu !== null && s.gpu.length === 1);
          expect(withGpu.length).toBeGreaterThan(0);
          expect(withGpu.at(-1).gpu[0]).toMatchObject({ index: 0, memUsedBytes: 1234 * 1024 * 1024, utilPct: 37 });
          // While the job ran, its pid's memory on the GPU was its own.
          expect(withGpu.some((s) => s.gpu[0].jobMemBytes === 1000 * 1024 * 1024)).toBe(true);
          for (const s of samples)
            expect(Object.keys(s).sort()).toEqual([
              'cpuPct',
              'folderBytes',
              'gpu',
              'openFiles',
              'procs',
              'rssBytes',
              't',
              'threads',
            ]);
          const monitor = readJobFile(job, 'monitor.json') as Record<string, number>;
          expect(monitor.peakRssBytes).toBeGreaterThan(20 << 20);
          expect(monitor.peakProcs).toBeGreaterThanOrEqual(1);
          expect(monitor.peakThreads).toBeGreaterThanOrEqual(1);
          expect(monitor.peakOpenFiles).toBeGreaterThanOrEqual(3);
          expect(monitor.peakFolderBytes).toBeGreaterThan(0);
          expect(monitor.peakGpuMemBytes).toBe(1234 * 1024 * 1024);
          expect(jobProcesses(job.id)).toEqual([]);
        } finally {
          rmSync(bin, { recursive: true, force: true });
        }
      });
  });

  // The fork bomb runs alone, after the rest: `ulimit -u` counts every task of the user, so
  // concurrent jobs (and gpuq's own threads) would eat the bomb's room and it might never grow.
  describe.each([mode])('a fork bomb, alone, as $label', (mode) => {
    it('under --pids it stops by itself, after growing, and takes nothing with it: limit/pids, 14', async () => {
      if (mode.privileged) mode.cgroups.check(); // root ignores ulimit -u: only a pids cgroup bounds it
      const f = await runHostile(await homeFor(mode), 'fork_bomb.py', ['--pids', mode.bombPids, '--timeout', '20s']);
      expectVerdict(f, 'limit', 'pids', 14);
      expect(f.status.timedOut).toBe(false);
      expect(jobCgroups(f.job.id), 'cgroups left behind').toEqual([]);
      const forks = readFileSync(join(f.job.remote?.dir as string, 'work', 'forks'), 'utf8').length;
      expect(forks, 'the bomb never grew: the limit left it no room').toBeGreaterThanOrEqual(5);
      // The machine still forks: this test goes on running processes.
      expect(execFileSync('true').length).toBe(0);
    });
  });
}
