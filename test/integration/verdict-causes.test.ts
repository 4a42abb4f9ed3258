/**
 * Causes hidden behind symptoms (issue 11, items 1-4), each as a real program under real limits
 * through the built CLI (`gpuq submit --wait --json`): the verdict's class and cause, its first
 * piece of evidence and its first hint. As root the job runs behind its own uid with memory and
 * pids cgroups; the memory and CPU-time cases also run as the unprivileged user gpuqrun (no
 * cgroups: the memory watch, rlimits). The cases are independent and run concurrently; their
 * homes are cleaned once, after all of them.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { need } from '../helpers/capability.js';
import { gpuq, type Home, makeHome, startGpuq, until, writeSharedProgram } from '../helpers/cli.js';
import { canMakeCgroup, ensureTestUser, TEST_USER } from '../helpers/hostile.js';

const isRoot = process.getuid?.() === 0;
const cgroups = need(isRoot && canMakeCgroup('memory') && canMakeCgroup('pids'), 'root with memory and pids cgroups');
const asUser = need(ensureTestUser(), `root, to create the user ${TEST_USER} and run gpuq as it`);

const homes: Home[] = [];
afterAll(async () => {
  await Promise.all(homes.splice(0).map((h) => h.cleanup()));
});

async function home(runAs?: string): Promise<Home> {
  const h = await makeHome(undefined, {}, { ...(runAs === undefined ? {} : { runAs }), autoCleanup: false });
  homes.push(h);
  return h;
}

/** `gpuq submit PROGRAM --wait --json OPTS…`: the CLI's exit code and the job it printed. */
async function submit(
  h: Home,
  name: string,
  source: string,
  opts: string[],
): Promise<{ code: number | null; job: Job }> {
  const prog = await writeSharedProgram(name, source);
  const r = await gpuq(h, ['submit', prog, '--wait', '--json', ...opts]);
  try {
    return { code: r.code, job: JSON.parse(r.stdout) as Job };
  } catch {
    throw new Error(`gpuq submit ${name} exited ${r.code} without a job: ${r.stderr}`);
  }
}

/** The verdict, shown in full when an assertion fails. */
function verdictOf(job: Job) {
  const v = job.verdict;
  if (!v) throw new Error(`no verdict: ${JSON.stringify(job)}`);
  return { v, show: JSON.stringify(v, null, 2) };
}

/** A multiprocessing.Pool whose first worker allocates far past --memory; the other sleeps. */
const POOL_OOM = `import multiprocessing, time
def work(n):
    if n == 0:
        block = b"x" * (600 << 20)
    time.sleep(120)
    return n
if __name__ == "__main__":
    with multiprocessing.Pool(2) as pool:
        print(pool.map(work, range(2)), flush=True)
`;

/** Burns CPU until SIGTERM arrives, ignores it, then allocates far past --memory. */
const OOM_IN_GRACE = `import signal, time
got = []
signal.signal(signal.SIGTERM, lambda *a: got.append(1))
while not got:
    sum(range(10000))
block = b"x" * (600 << 20)
time.sleep(120)
`;

/** A child that spins until the CPU-time limit stops it; the parent then exits 2. */
const CHILD_CPU = `import subprocess, sys
r = subprocess.run([sys.executable, "-c", "while True: pass"])
print("worker ended with", r.returncode, file=sys.stderr)
sys.exit(2)
`;

describe.concurrent('verdicts name the cause behind the symptom', () => {
  it('a Pool worker killed for memory, then the timeout: oom/cgroup, timedOut, the kill first', async () => {
    cgroups.check();
    const { code, job } = await submit(await home(), 'pool_oom.py', POOL_OOM, [
      '--memory',
      '128m',
      // 6 s: the pool's start and the kill must come before the limit on a loaded machine
      '--timeout',
      '6s',
      '--grace',
      '1s',
    ]);
    const { v, show } = verdictOf(job);
    expect(code, show).toBe(12);
    expect(v, show).toMatchObject({ class: 'oom', cause: 'cgroup', timedOut: true });
    expect(v.summary, show).toMatch(/killed for memory at the 128 MiB limit .* in; the job then .*6s wall-clock limit/);
    expect(v.evidence[0], show).toMatch(
      /memory cgroup counted \d+ OOM kills? at its 128 MiB limit, .* after the start$/,
    );
    expect(v.evidence, show).toContain('the wall-clock limit of 6s fired');
    expect(v.hints[0], show).toMatch(/--memory 256m/);
    expect(v.hints[1], show).toMatch(/ProcessPoolExecutor/);
  });

  it('the same Pool as an unprivileged user: the memory watch ends the whole job at once (oom/memory_watch)', async () => {
    asUser.check();
    const { code, job } = await submit(await home(TEST_USER), 'pool_oom.py', POOL_OOM, [
      '--memory',
      '128m',
      '--timeout',
      '20s',
    ]);
    const { v, show } = verdictOf(job);
    expect(code, show).toBe(12);
    expect(v, show).toMatchObject({ class: 'oom', cause: 'memory_watch', timedOut: false });
    expect(v.evidence[0], show).toMatch(/^gpuq's memory watch killed the job/);
    expect(v.hints[0], show).toMatch(/--memory 256m/);
  });

  it('the timeout first, an OOM kill in the grace period after: timeout, the kill as later evidence', async () => {
    cgroups.check();
    const { code, job } = await submit(await home(), 'grace_oom.py', OOM_IN_GRACE, [
      '--memory',
      '128m',
      '--timeout',
      '3s',
      '--grace',
      '5s',
    ]);
    const { v, show } = verdictOf(job);
    expect(code, show).toBe(11);
    expect(v, show).toMatchObject({ class: 'timeout', cause: null, timedOut: true });
    expect(v.evidence[0], show).toBe('the wall-clock limit of 3s fired');
    expect(v.evidence[1], show).toMatch(/OOM kill.*after the wall-clock limit had fired$/);
    expect(v.hints[0], show).toMatch(/--timeout 6s/);
  });

  for (const runAs of [undefined, TEST_USER]) {
    it(`a child over --cpu-time while the parent exits 2: limit/cpu_time (${runAs ?? 'the test runner'})`, async () => {
      if (runAs) asUser.check();
      const { code, job } = await submit(await home(runAs), 'child_cpu.py', CHILD_CPU, [
        '--cpu-time',
        '1s',
        '--timeout',
        '30s',
      ]);
      const { v, show } = verdictOf(job);
      expect(code, show).toBe(14);
      expect(v, show).toMatchObject({ class: 'limit', cause: 'cpu_time', exitCode: 2 });
      expect(v.summary, show).toMatch(
        /^Its process python3 \(pid \d+\) was stopped at the 1s CPU-time limit, and the job then exited with code 2\.$/,
      );
      expect(v.evidence[0], show).toMatch(
        /^its process python3 \(pid \d+\) was last seen at [01]\.\d\ds of CPU time, within reach of the 1s per-process CPU-time limit, and then vanished$/,
      );
      expect(v.hints[0], show).toMatch(/--cpu-time 2s/);
    });
  }

  it('a shell child over --file-size (SIGXFSZ) while the parent exits 3: limit/file_size', async () => {
    const { code, job } = await submit(
      await home(),
      'child_fsize.py',
      'import subprocess, sys\nsubprocess.run(["bash", "-c", "dd if=/dev/zero of=big bs=1M count=4 status=none; echo after"])\nsys.exit(3)\n',
      ['--file-size', '1m', '--timeout', '30s'],
    );
    const { v, show } = verdictOf(job);
    expect(code, show).toBe(14);
    expect(v, show).toMatchObject({ class: 'limit', cause: 'file_size', exitCode: 3 });
    expect(v.evidence[0], show).toMatch(/^stderr: .*File size limit exceeded/);
    expect(v.hints[0], show).toMatch(/--file-size 2m/);
  });

  it('forks refused by --pids while the parent exits 4: limit/pids, the cgroup refusals first', async () => {
    cgroups.check();
    const prog = [
      'import os, sys, time',
      'try:',
      '    for i in range(64):',
      '        if os.fork() == 0:',
      '            time.sleep(60)',
      '            os._exit(0)',
      'except OSError as e:',
      '    print("fork failed:", e, file=sys.stderr)',
      '    sys.exit(4)',
      '',
    ].join('\n');
    const { code, job } = await submit(await home(), 'forks.py', prog, ['--pids', '8', '--timeout', '30s']);
    const { v, show } = verdictOf(job);
    expect(code, show).toBe(14);
    expect(v, show).toMatchObject({ class: 'limit', cause: 'pids', exitCode: 4 });
    expect(v.evidence[0], show).toMatch(/^the pids cgroup refused \d+ forks?$/);
    expect(v.evidence[1], show).toMatch(/^stderr: fork failed: \[Errno 11\]/);
    expect(v.hints[0], show).toMatch(/--pids 16/);
  });

  it('exit 0 although --file-size refused a write: succeeded/limit_refused, what was refused as evidence', async () => {
    const prog = [
      'import sys',
      'try:',
      '    with open("big", "wb") as f:',
      '        f.write(b"x" * (2 << 20))',
      'except OSError as e:',
      '    print("could not write big:", e, file=sys.stderr)',
      'print("done")',
      '',
    ].join('\n');
    const { code, job } = await submit(await home(), 'refused.py', prog, ['--file-size', '1m', '--timeout', '30s']);
    const { v, show } = verdictOf(job);
    expect(code, show).toBe(0);
    expect(v, show).toMatchObject({ class: 'succeeded', cause: 'limit_refused', exitCode: 0 });
    expect(v.summary, show).toMatch(/^Exited 0, but the file-size limit of 1 MiB refused it a write/);
    expect(v.evidence[0], show).toBe('stderr: could not write big: [Errno 27] File too large');
    expect(v.hints[0], show).toMatch(/check that the results are complete/);
  });

  it('SIGTERM ignored under --timeout: the first hint says so, not "look for a deadlock"', async () => {
    const prog =
      'import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint("ignoring", flush=True)\ntime.sleep(120)\n';
    const { code, job } = await submit(await home(), 'stubborn.py', prog, ['--timeout', '4s', '--grace', '1s']);
    const { v, show } = verdictOf(job);
    expect(code, show).toBe(11);
    expect(v, show).toMatchObject({ class: 'timeout', signal: 'SIGKILL' });
    expect(v.evidence[0], show).toBe('the wall-clock limit of 4s fired, then SIGKILL after the grace period');
    expect(v.hints[0], show).toMatch(/^it ignored SIGTERM: handle SIGTERM/);
    expect(v.hints.slice(1).join('\n'), show).not.toMatch(/SIGTERM/);
  });

  it('a cancelled job that wrote to stderr: the evidence is the cancel and the exit status only', async () => {
    const h = await home();
    const prog = await writeSharedProgram(
      'noisy.py',
      'import sys, time\nprint("RuntimeError: something unrelated", file=sys.stderr, flush=True)\ntime.sleep(120)\n',
    );
    const id = (await gpuq(h, ['submit', prog, '-q'])).stdout.trim();
    // `logs --stderr` passes the job's stderr on to its own stderr.
    const wrote = async () => (await gpuq(h, ['logs', id, '--stderr'])).stderr.includes('something unrelated');
    expect(await until(wrote, 30_000)).toBe(true);
    const waiting = startGpuq(h, ['wait', id, '--json']);
    expect((await gpuq(h, ['cancel', id])).code).toBe(0);
    expect((await waiting.done).code).toBe(16);
    const job = JSON.parse((await gpuq(h, ['show', id, '--json'])).stdout) as Job;
    const { v, show } = verdictOf(job);
    expect(v.class, show).toBe('cancelled');
    expect(v.evidence[0], show).toBe('gpuq cancel sent SIGTERM to the process group');
    expect(v.evidence, show).toHaveLength(2);
    expect(v.evidence[1], show).toMatch(/^exit code \d+/);
  });
});
