/**
 * End to end on the embedded local node (the real binary, real supervisors, real processes; each
 * test its own GPUQ_HOME), split from cli-local.test.ts so vitest runs the parts in parallel:
 * verdicts and exit codes on the embedded local node: failure, timeout, grace, cancel, a killed
 * supervisor, forged status files, wait on several jobs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import {
  alive,
  childrenOf,
  gpuq,
  gpuqJson,
  type Home,
  isZombie,
  jobProcesses,
  makeGate,
  makeHome,
  startGpuq,
  until,
  writeProgram,
} from '../helpers/cli.js';

/** A GPUQ_HOME removed, with what is left of its jobs, when the test ends. */
function home(config?: unknown): Promise<Home> {
  return makeHome(config);
}

/** A job's stdout.log on the local node, read directly: a readiness check without a CLI call per look. */
function stdoutOf(h: Home, id: string): string {
  try {
    return readFileSync(join(h.dir, 'nodes', 'local', 'jobs', id, 'stdout.log'), 'utf8');
  } catch {
    return '';
  }
}

describe('verdicts and exit codes', () => {
  it('a failing program: verdict failed, exit 10 from submit --wait and wait, the worst of several', async () => {
    const h = await home();
    const prog = await writeProgram('fail.py', 'import sys\nprint("something broke", file=sys.stderr)\nsys.exit(3)\n');
    const ok = await writeProgram('ok.py', 'print(1)\n');
    // one bulk submit: its --wait exits with the worst code, as wait on both does
    const r = await gpuq(h, ['submit', prog, ok, '--wait']);
    expect(r.code, r.stderr).toBe(10);
    const [id, okId] = r.stdout.split('\n') as [string, string];
    expect(r.stdout).toMatch(/failed/);
    const w = await gpuq(h, ['wait', okId, id, '--json']);
    expect(w.code).toBe(10);
    const job = (JSON.parse(w.stdout) as Job[]).find((j) => j.id === id);
    expect(job?.verdict).toMatchObject({ class: 'failed', exitCode: 3, timedOut: false });
    expect(job?.verdict?.summary).toMatch(/something broke/);
  });

  it('a timeout: verdict timeout, exit 11; a program ignoring SIGTERM is SIGKILLed after the grace, with its whole group', async () => {
    const h = await home();
    const sleeper = await writeProgram('sleep.py', 'import time\ntime.sleep(60)\n');
    const prog = await writeProgram(
      'stubborn.py',
      'import signal, subprocess, time\nsignal.signal(signal.SIGTERM, ' +
        'signal.SIG_IGN)\nsubprocess.Popen(["sleep", "300"])\n' +
        'print("ignoring", flush=True)\ntime.sleep(300)\n',
    );
    // 4 s: the handler must be in place before the SIGTERM lands, even on a loaded machine.
    const r = await gpuq(h, ['submit', sleeper, prog, '--timeout', '4s', '--grace', '1s', '--wait', '--json']);
    expect(r.code, r.stderr).toBe(11);
    const [plain, job] = JSON.parse(r.stdout) as [Job, Job];
    expect(plain.verdict).toMatchObject({ class: 'timeout', timedOut: true });
    expect(plain.verdict?.signal).not.toBe('SIGKILL');
    expect(stdoutOf(h, job.id)).toContain('ignoring');
    expect(job.verdict).toMatchObject({ class: 'timeout', signal: 'SIGKILL' });
    expect(job.verdict?.summary).toMatch(/ignored SIGTERM/);
    expect(jobProcesses(job.id)).toEqual([]);
  });

  it('cancel stops a program and its children: verdict cancelled, exit 16, nothing survives', async () => {
    const h = await home();
    const prog = await writeProgram(
      'tree.py',
      `${[
        'import os, subprocess, time',
        'kids = [subprocess.Popen(["sleep", "300"]) for _ in range(3)]',
        'if os.fork() == 0:',
        '    os.setsid()',
        '    if os.fork() == 0:',
        '        time.sleep(300)',
        '    os._exit(0)',
        'print("started", flush=True)',
        'time.sleep(300)',
      ].join('\n')}\n`,
    );
    const id = (await gpuq(h, ['submit', prog, '-q'])).stdout.trim();
    expect(await until(() => stdoutOf(h, id).includes('started'), 30_000)).toBe(true);
    // the program, its 3 children and the setsid grandchild (forked just after "started")
    expect(await until(() => jobProcesses(id).length >= 5, 30_000)).toBe(true);
    const waiting = startGpuq(h, ['wait', id, '--json']);
    const c = await gpuq(h, ['cancel', id]);
    expect(c.code).toBe(0);
    const w = await waiting.done;
    expect(w.code).toBe(16);
    expect((JSON.parse(w.stdout) as Job[])[0]?.verdict?.class).toBe('cancelled');
    expect(await until(() => jobProcesses(id).length === 0, 5000)).toBe(true);
  });

  // One job serves both: the supervisor SIGKILLed makes it lost (17), and its timer stands down.
  it('a supervisor killed with SIGKILL makes the job lost (17); its timer stands down instead of signalling pids it no longer owns', async () => {
    const h = await home();
    const prog = await writeProgram('long.py', 'import time\ntime.sleep(300)\n');
    const id = (await gpuq(h, ['submit', prog, '--timeout', '20s', '--grace', '1s', '-q'])).stdout.trim();
    const job = await gpuqJson<Job>(h, ['show', id]);
    const sup = job.remote?.supervisorPid as number;
    const pid = job.remote?.pid as number;
    // The timer: the supervisor's bash subshell waiting out the timeout on job.lock (flock), or
    // sleeping where the lock is not held.
    let timer: number | undefined;
    expect(
      await until(() => {
        timer = childrenOf(sup).find(
          (c) => c.comm === 'bash' && childrenOf(c.pid).some((g) => g.comm === 'flock' || g.comm === 'sleep'),
        )?.pid;
        return timer !== undefined;
      }),
      'no timer subshell under the supervisor',
    ).toBe(true);
    process.kill(sup, 'SIGKILL');
    // The timer sees the lock freed (or wakes at the timeout), finds its supervisor gone and ends without acting.
    expect(await until(() => !alive(timer as number) || isZombie(timer as number), 30_000), 'the timer lingers').toBe(
      true,
    );
    // nothing signalled the (orphaned) program, and the timer did not fire (20 s: a timeout that
    // passes on a loaded machine before the kill would fire the timer legitimately)
    expect(alive(pid)).toBe(true);
    expect(existsSync(join(job.remote?.dir as string, 'timeout.fired'))).toBe(false);
    // the orphaned program is not ours to judge; stop it so the test leaves nothing behind
    for (const p of jobProcesses(id)) process.kill(p, 'SIGKILL');
    const w = await gpuq(h, ['wait', id, '--json']);
    expect(w.code).toBe(17);
    expect((JSON.parse(w.stdout) as Job[])[0]?.verdict?.class).toBe('lost');
  });

  it("--env cannot change the supervisor's own settings, only the program's environment", async () => {
    const h = await home();
    const prog = await writeProgram(
      'env.py',
      'import os, resource\nprint(os.environ["FILES_MAX"], os.environ["COMMAND"], ' +
        'resource.getrlimit(resource.RLIMIT_NOFILE)[0], os.environ["GPUQ_JOB_ID"])\n',
    );
    const r = await gpuq(h, [
      'submit',
      prog,
      '--files',
      '64',
      '--env',
      'FILES_MAX=0',
      '--env',
      'COMMAND=true',
      '--env',
      'JOB_DIR=/tmp',
      '--wait',
      '-q',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    expect((await gpuq(h, ['logs', id])).stdout).toBe(`0 true 64 ${id}\n`);
  });

  it('a job that forges its status.json gets the verdict of what really happened', async () => {
    const h = await home();
    const gate = await makeGate();
    const prog = await writeProgram(
      'forge.py',
      `${gate.pyDef}${[
        'import json, sys, time',
        'try:',
        '    s = json.load(open("../status.json"))',
        '    s.update(state="exited", exitCode=0, endedAtMs=s["startedAtMs"] + 1)',
        '    open("../status.json", "w").write(json.dumps(s))',
        'except OSError:',
        '    pass  # behind a trust boundary (README, "Trust model") the attempt itself fails',
        'print("forged", flush=True)',
        'gate_wait()',
        'sys.exit(3)',
      ].join('\n')}\n`,
    );
    const id = (await gpuq(h, ['submit', prog, '-q'])).stdout.trim();
    expect(await until(() => stdoutOf(h, id).includes('forged'), 30_000)).toBe(true);
    const during = (await gpuqJson<Job[]>(h, ['list'])).find((j) => j.id === id);
    expect(during?.state).toBe('running');
    await gate.open();
    const w = await gpuq(h, ['wait', id, '--json']);
    expect(w.code).toBe(10);
    expect((JSON.parse(w.stdout) as Job[])[0]?.verdict).toMatchObject({ class: 'failed', exitCode: 3 });
  });
});
