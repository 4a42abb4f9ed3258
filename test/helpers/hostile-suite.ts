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
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { need, type Need } from './capability.js';
import { gpuq, type Home, makeHome, NO_BOUNDARY_CONFIG, SYSTEM_PYTHON } from './cli.js';
import { fakeNvidiaSmi } from './nvidia-smi.js';
import {
  canMakeCgroup,
  ensureTestUser,
  expectGone,
  expectVerdict,
  type Finished,
  finished,
  HOSTILE,
  jobCgroups,
  jobProcesses,
  liveProcess,
  pidFile,
  readJobFile,
  runHostile,
  startHostile,
  TEST_USER,
  waitForFile,
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

/** A fixture of test/fixtures/hostile by its name. */
const fixture = (name: string) => join(HOSTILE, name);

/** The jobs of `gpuq submit … --json` or `gpuq wait … --json` (one JSON array), or a clear error. */
function jobsOf(r: { code: number | null; stdout: string; stderr: string }, what: string): Job[] {
  try {
    // `submit` of one file prints the job itself, of several an array
    const parsed = JSON.parse(r.stdout) as Job | Job[];
    return Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    throw new Error(`gpuq ${what} exited ${r.code} without jobs: ${r.stderr}`);
  }
}

/**
 * One `gpuq submit A B … --wait --json OPTS…` (one gpuq run for several jobs, which run side by
 * side) and what each job left, in the order of `programs`. The CLI's exit code is the worst of
 * the jobs': callers group programs of one verdict class, so it is each job's own.
 */
async function runGroup(h: Home, programs: string[], opts: string[]): Promise<Finished[]> {
  const r = await gpuq(h, ['submit', ...programs, '--wait', '--json', ...opts]);
  const jobs = jobsOf(r, `submit ${programs.join(' ')}`);
  return programs.map((p) => {
    const job = jobs.find((j) => j.file === p);
    if (job === undefined) throw new Error(`no job for ${p} (exit ${r.code}): ${r.stderr}`);
    return finished(r.code, r.stderr, job);
  });
}

/** `gpuq wait IDS… --json` (its exit code is the worst of the jobs') and what each job left. */
async function waitAll(h: Home, ids: string[]): Promise<Finished[]> {
  const r = await gpuq(h, ['wait', ...ids, '--json']);
  const jobs = jobsOf(r, `wait ${ids.join(' ')}`);
  return ids.map((id) => {
    const job = jobs.find((j) => j.id === id);
    if (job === undefined) throw new Error(`wait printed no job ${id} (exit ${r.code}): ${r.stderr}`);
    return finished(r.code, r.stderr, job);
  });
}

/**
 * Declares the hostile tests for one mode (call at a test file's top level): one file per mode,
 * so vitest's two workers run the modes side by side. The fork bomb runs after the rest of its
 * file, alone among that user's jobs (`ulimit -u` counts every task of the user).
 *
 * To spend less CPU (every job and every gpuq run costs some), the programs whose tests need only
 * the finished job run in groups: one `submit A B … --wait` per group, of programs that earn the
 * same verdict class under the same options, so the CLI's exit code (the worst) is still each
 * job's. Tests of a group share its run (a promise made by the first test that needs it).
 */
export function hostileSuite(mode: Mode): void {
  const homes: Home[] = [];
  /** Programs with their arguments written in (so several can share one submit), readable by all. */
  const variants = mkdtempSync(join(tmpdir(), 'gpuq-hostile-variants-'));
  chmodSync(variants, 0o755);
  afterAll(async () => {
    await Promise.all(homes.splice(0).map((h) => h.cleanup()));
    rmSync(variants, { recursive: true, force: true });
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

  /** A copy of a fixture that runs as if given `args` (sys.argv set first), for a group submit. */
  function withArgs(name: string, args: string[]): string {
    const path = join(variants, `${name.replace(/\.py$/, '')}${args.join('')}.py`);
    const text = `import sys\nsys.argv[1:] = ${JSON.stringify(args)}\n${readFileSync(fixture(name), 'utf8')}`;
    writeFileSync(path, text, { mode: 0o644 });
    return path;
  }

  /** Each group's run, started by the first test that needs it. */
  const runs = new Map<string, Promise<Finished[]>>();
  function shared(key: string, run: () => Promise<Finished[]>): Promise<Finished[]> {
    let p = runs.get(key);
    if (p === undefined) {
      p = run();
      runs.set(key, p);
    }
    return p;
  }

  /** Programs that succeed: threads_env.py and (root) child_oom.py. */
  const SUCCEEDS = ['threads_env.py', ...(mode.privileged ? ['child_oom.py'] : [])];
  const succeeded = (name: string) =>
    shared('succeeded', async () =>
      runGroup(await homeFor(mode), SUCCEEDS.map(fixture), [
        '--memory',
        '64m',
        '--timeout',
        '30s',
        '--env',
        'OMP_NUM_THREADS=7',
      ]),
    ).then((fs) => fs[SUCCEEDS.indexOf(name)] as Finished);

  /** One group per verdict class: the programs, their options, and the class's exit code. */
  const byClass =
    (
      key: string,
      names: string[],
      opts: () => string[],
      around?: (run: () => Promise<Finished[]>) => Promise<Finished[]>,
    ) =>
    (name: string) =>
      shared(key, async () => {
        const h = await homeFor(mode);
        const run = () => runGroup(h, names.map(fixture), opts());
        return around ? around(run) : run();
      }).then((fs) => fs[names.indexOf(name)] as Finished);

  const signaled = byClass('signaled', ['segfault.py', 'abort.py'], () => []);
  const failed = byClass('failed', ['missing_module.py', 'syntax_error.py'], () => []);
  const oom = byClass('oom', ['memory_hog.py', 'memory_error.py'], () => ['--memory', '64m', '--timeout', '30s']);

  // The limit group: one program per limit. --file-size is 2m so that the 1 MiB tmpfs of
  // disk_full.py is full (ENOSPC) before its file reaches the size limit (EFBIG).
  let diskTarget = '/dev/full';
  const limited = byClass(
    'limit',
    ['cpu_burn.py', 'many_files.py', 'big_file.py', 'disk_full.py'],
    () => ['--cpu-time', '1s', '--files', '32', '--file-size', '2m', '--timeout', '30s', '--arg', diskTarget],
    async (run) => {
      // A 1 MiB tmpfs where we may mount one; /dev/full (always ENOSPC) elsewhere.
      const mnt = mkdtempSync(join(tmpdir(), 'gpuq-tmpfs-'));
      let mounted = false;
      if (isRoot) {
        try {
          execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=1777', 'tmpfs', mnt], { stdio: 'ignore' });
          mounted = true;
          diskTarget = join(mnt, 'fill.bin');
        } catch {
          /* no mount here */
        }
      }
      try {
        return await run();
      } finally {
        if (mounted) execFileSync('umount', [mnt]);
        rmSync(mnt, { recursive: true, force: true });
      }
    },
  );

  describe.concurrent.each([mode])('hostile programs as $label', (mode) => {
    const home = () => homeFor(mode);
    const escapeeHome = () => escapeeHomeFor(mode);

    it('the job runs as that user, adopted by its supervisor (subreaper); without cgroups when unprivileged', async () => {
      const f = await succeeded('threads_env.py');
      expectVerdict(f, 'succeeded', undefined, 0);
      expect(f.status.subreaper).toBe(true);
      if (!mode.privileged) expect(f.status.cgroup).toBe(null);
    });

    it('a CPU burner is killed at --cpu-time: limit/cpu_time, 14', async () => {
      const f = await limited('cpu_burn.py');
      expectVerdict(f, 'limit', 'cpu_time', 14);
      expect(f.status).toMatchObject({ limitFired: 'cpu', timedOut: false });
      expect(Number(f.status.cpuSeconds)).toBeGreaterThanOrEqual(0.8); // times(2) ticks round down a little
    });

    it('a memory hog under --memory is killed for memory: oom, 12', async () => {
      const f = await oom('memory_hog.py');
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
      // A job of its own: the memory watch's PSS check alone keeps it alive as the unprivileged user.
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
      const f = await oom('memory_error.py');
      expectVerdict(f, 'oom', 'memory_error', 12);
    });

    it('SIGSEGV: signaled/sigsegv, 15', async () => {
      const f = await signaled('segfault.py');
      expectVerdict(f, 'signaled', 'sigsegv', 15);
      expect(f.status).toMatchObject({ exitCode: 139, signal: 11 });
    });

    it('SIGABRT: signaled/sigabrt, 15', async () => {
      const f = await signaled('abort.py');
      expectVerdict(f, 'signaled', 'sigabrt', 15);
      expect(f.status).toMatchObject({ exitCode: 134, signal: 6 });
    });

    it('a full disk: limit/disk_full, 14', async () => {
      const f = await limited('disk_full.py');
      expectVerdict(f, 'limit', 'disk_full', 14);
    });

    it('too many open files under --files: limit/open_files, 14', async () => {
      const f = await limited('many_files.py');
      expectVerdict(f, 'limit', 'open_files', 14);
    });

    it('a file over --file-size: limit/file_size, 14', async () => {
      const f = await limited('big_file.py');
      expectVerdict(f, 'limit', 'file_size', 14);
    });

    it('a missing module: failed/missing_module, 10, and the hint names the module', async () => {
      const f = await failed('missing_module.py');
      expectVerdict(f, 'failed', 'missing_module', 10);
      expect([f.job.verdict?.summary, ...(f.job.verdict?.hints ?? [])].join('\n')).toContain('gpuq_no_such_module_xyz');
    });

    it('a syntax error: failed/syntax_error, 10', async () => {
      const f = await failed('syntax_error.py');
      expectVerdict(f, 'failed', 'syntax_error', 10);
    });

    // Both escapees in one submit: one as escape.py, one that also clears its environment.
    const escapees = () =>
      shared('escapees', async () =>
        runGroup(await escapeeHome(), [fixture('escape.py'), withArgs('escape.py', ['--clear-env'])], []),
      );

    it('a setsid + double-forked grandchild does not outlive a job that exits 0', async () => {
      const f = (await escapees())[0] as Finished;
      expectVerdict(f, 'succeeded', undefined, 0);
      await expectGone(pidFile(f.job, 'escaped.pid'));
      expect(Number(f.status.leftovers)).toBeGreaterThanOrEqual(1);
    });

    it('…not even one that also cleared its environment (no marker to find it by)', async () => {
      const f = (await escapees())[1] as Finished;
      expectVerdict(f, 'succeeded', undefined, 0);
      await expectGone(pidFile(f.job, 'escaped.pid'));
    });

    // Also the plain wall-clock timeout's record (the main process ends at the SIGTERM, no grace
    // kill); the TERM-ignorer under --timeout is cli-verdicts.test.ts's and verdict-causes.test.ts's.
    it('a timeout warns the setsid + double-forked escapee with SIGTERM too, then takes it: timeout, 11', async () => {
      const f = await runHostile(await escapeeHome(), 'escape.py', [
        '--arg',
        '--stay',
        '--arg',
        '--note-term',
        '--timeout',
        '2s',
      ]);
      expectVerdict(f, 'timeout', undefined, 11);
      expect(f.status).toMatchObject({ timedOut: true, limitFired: 'timeout', exitCode: 143, killedAfterGrace: false });
      await expectGone(pidFile(f.job, 'escaped.pid'));
      expect(readFileSync(join(f.job.remote?.dir as string, 'work', 'escaped.term'), 'utf8')).toBe('SIGTERM\n');
    });

    it('gpuq cancel takes the setsid + double-forked escapees (one with a cleared environment) with it', async () => {
      const h = await escapeeHome();
      const programs = [withArgs('escape.py', ['--stay']), withArgs('escape.py', ['--stay', '--clear-env'])];
      const r = await gpuq(h, ['submit', ...programs, '--json', '--timeout', '60s']);
      expect(r.code, r.stderr).toBe(0);
      const started = jobsOf(r, 'submit');
      expect(started.length, r.stderr).toBe(2);
      for (const j of started) await waitForFile(j.remote?.dir as string, 'escaped.pid');
      const ids = started.map((j) => j.id);
      const c = await gpuq(h, ['cancel', ...ids]);
      expect(c.code, c.stderr).toBe(0);
      for (const f of await waitAll(h, ids)) {
        expectVerdict(f, 'cancelled', undefined, 16);
        await expectGone(pidFile(f.job, 'escaped.pid'));
      }
    });

    // Only a cgroup sees a child's OOM kill while the main process lives on.
    if (mode.privileged)
      it('a child OOM-killed while the main process exits 0 is reported: succeeded/child_oom, 0', async () => {
        mode.cgroups.check();
        const f = await succeeded('child_oom.py');
        expectVerdict(f, 'succeeded', 'child_oom', 0);
        expect(f.stdoutLog).toMatch(/child ended with -9/);
        expect(Number(f.status.oomKills)).toBeGreaterThanOrEqual(1);
        expect(f.job.verdict?.evidence.join('\n')).toMatch(/OOM kill/);
      });

    it('SIGKILL from outside: signaled/sigkill, 15 from gpuq wait', async () => {
      const h = await home();
      const { id, pid } = await startHostile(h, 'sleep_forever.py', ['--timeout', '60s']);
      process.kill(pid, 'SIGKILL');
      const [f] = await waitAll(h, [id]);
      expectVerdict(f as Finished, 'signaled', 'sigkill', 15);
      expect(f?.status).toMatchObject({ exitCode: 137, timedOut: false, cancelled: false, limitFired: null });
    });

    // The recorded pid is the node's view of the main process; inside the userns boundary that is
    // the namespace's first process (unshare), which does not pass SIGTERM on: signal it without one.
    it('SIGTERM from outside: signaled/sigterm, 15 — not a cancel', async () => {
      const h = await escapeeHome();
      const { id, pid } = await startHostile(h, 'sleep_forever.py', ['--timeout', '60s']);
      process.kill(pid, 'SIGTERM');
      const [f] = await waitAll(h, [id]);
      expectVerdict(f as Finished, 'signaled', 'sigterm', 15);
      expect(f?.status).toMatchObject({ exitCode: 143, cancelled: false });
    });

    it('gpuq cancel: cancelled, 16, and the tree is gone (a TERM-ignoring main, after the grace)', async () => {
      const h = await home();
      const { id, pid, dir } = await startHostile(h, 'ignore_term.py', ['--timeout', '60s', '--grace', '1s']);
      await waitForFile(dir, 'ready');
      const c = await gpuq(h, ['cancel', id]);
      expect(c.code, c.stderr).toBe(0);
      const [f] = await waitAll(h, [id]);
      expectVerdict(f as Finished, 'cancelled', undefined, 16);
      expect(f?.status).toMatchObject({ cancelled: true, killedAfterGrace: true });
      expect(liveProcess(pid)).toBe(false);
    });

    it("thread-pool variables default to the job's CPU share; --env wins", async () => {
      const cores = Number(execFileSync('nproc').toString().trim());
      const f = await succeeded('threads_env.py');
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
