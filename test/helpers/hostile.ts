/**
 * Used by hostile.test.ts (gpuq as the test runner, and as an unprivileged user through
 * runuser): run a hostile program from test/fixtures/hostile under the real CLI and read back what
 * its supervisor recorded, then check that nothing of the job is left alive.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { alive, gpuq, type Home, jobProcesses, REPO, until } from './cli.js';

export { jobProcesses };

export const HOSTILE = join(REPO, 'test', 'fixtures', 'hostile');

/** The unprivileged user the user-mode tests run gpuq as (created when missing). */
export const TEST_USER = 'gpuqrun';

/** What a finished job left: the CLI's exit code, the job, and its folder's files. */
export interface Finished {
  code: number | null;
  stderr: string;
  job: Job;
  status: Record<string, unknown>;
  monitor: Record<string, unknown> | null;
  stdoutLog: string;
}

/** Reads a JSON file of the job folder, or null. */
export function readJobFile(job: Job, name: string): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(join(job.remote?.dir as string, name), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** Reads everything a finished job left behind. */
export function finished(code: number | null, stderr: string, job: Job): Finished {
  return {
    code,
    stderr,
    job,
    status: readJobFile(job, 'status.json') ?? {},
    monitor: readJobFile(job, 'monitor.json'),
    stdoutLog: readFileSync(join(job.remote?.dir as string, 'stdout.log'), 'utf8'),
  };
}

/** `gpuq submit FIXTURE --wait --json OPTS…` and what the job left. */
export async function runHostile(home: Home, fixture: string, opts: string[] = []): Promise<Finished> {
  const r = await gpuq(home, ['submit', join(HOSTILE, fixture), '--wait', '--json', ...opts]);
  let job: Job;
  try {
    job = JSON.parse(r.stdout) as Job;
  } catch {
    throw new Error(`gpuq submit ${fixture} exited ${r.code} without a job: ${r.stderr}`);
  }
  return finished(r.code, r.stderr, job);
}

/** Starts a fixture without waiting; returns the job id, its folder and the main process's pid. */
export async function startHostile(
  home: Home,
  fixture: string,
  opts: string[] = [],
): Promise<{ id: string; pid: number; dir: string }> {
  // submit --json prints the job as recorded once it started (one gpuq run, not a submit and a show).
  const r = await gpuq(home, ['submit', join(HOSTILE, fixture), '--json', ...opts]);
  if (r.code !== 0) throw new Error(`gpuq submit ${fixture} exited ${r.code}: ${r.stderr}`);
  const job = JSON.parse(r.stdout) as Job;
  return { id: job.id, pid: job.remote?.pid as number, dir: job.remote?.dir as string };
}

/** `gpuq wait ID --json` and what the job left. */
export async function waitHostile(home: Home, id: string): Promise<Finished> {
  const r = await gpuq(home, ['wait', id, '--json']);
  const show = await gpuq(home, ['show', id, '--json']);
  return finished(r.code, r.stderr, JSON.parse(show.stdout) as Job);
}

/** The state letter of /proc/PID/stat or /proc/PID/task/TID/stat, or null when gone. */
export function stateOf(path: string): string | null {
  try {
    const text = readFileSync(path, 'latin1');
    return text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

/** Whether any thread of the process still runs (a Z main thread with live threads is live). */
export function anyThreadLive(pid: number): boolean {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return false;
  }
  return tids.some((tid) => {
    const st = stateOf(`/proc/${pid}/task/${tid}/stat`);
    return st !== null && st !== 'Z' && st !== 'X' && st !== 'x';
  });
}

/**
 * Whether a pid names a live process: not a zombie, unless a thread of it still runs (a process
 * whose main thread exited shows Z while its other threads go on).
 */
export function liveProcess(pid: number): boolean {
  return alive(pid) && anyThreadLive(pid);
}

/** Asserts the verdict, the CLI's exit code, and that no process of the job is alive. */
export function expectVerdict(f: Finished, cls: string, cause: string | null | undefined, code: number): void {
  const where = `${f.job.verdict?.summary ?? 'no verdict'} | ${f.stderr} | status ${JSON.stringify(f.status)}`;
  expect(f.job.verdict?.class, where).toBe(cls);
  if (cause !== undefined) expect(f.job.verdict?.cause, where).toBe(cause);
  expect(f.code, where).toBe(code);
  expect(jobProcesses(f.job.id), 'processes of the job still alive').toEqual([]);
}

/** The pid a fixture wrote into its work folder (escape.py's escaped.pid). */
export function pidFile(job: Job, name: string): number {
  return Number(readFileSync(join(job.remote?.dir as string, 'work', name), 'utf8').trim());
}

/** Waits until a pid is gone (a SIGKILLed orphan may take a moment to be reaped). */
export async function expectGone(pid: number): Promise<void> {
  expect(await until(() => !liveProcess(pid), 3000), `pid ${pid} survived the job`).toBe(true);
}

/** Creates the unprivileged test user when missing; false when that is impossible. */
export function ensureTestUser(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('id', ['-u', TEST_USER], { stdio: 'ignore' });
    return true;
  } catch {
    /* create it */
  }
  for (const useradd of ['/usr/sbin/useradd', '/sbin/useradd', 'useradd']) {
    try {
      execFileSync(useradd, ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', TEST_USER], {
        stdio: 'ignore',
      });
      return true;
    } catch {
      /* next */
    }
  }
  // Another test file (its own worker) may have created it meanwhile: useradd then fails.
  try {
    execFileSync('id', ['-u', TEST_USER], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether the supervisor can make a cgroup with this controller here, found the way it does: a
 * folder beside this process's own v1 cgroup, or under the v2 root with the controller enabled.
 * (A container may show /sys/fs/cgroup read-only even to root.)
 */
export function canMakeCgroup(controller: 'memory' | 'pids'): boolean {
  if (process.getuid?.() !== 0) return false;
  const v2 = '/sys/fs/cgroup/cgroup.controllers';
  let dir: string;
  if (existsSync(v2)) {
    if (!readFileSync(v2, 'utf8').split(/\s+/).includes(controller)) return false;
    dir = `/sys/fs/cgroup/gpuq-probe-${process.pid}`;
  } else {
    const own = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .map((l) => l.split(':'))
      .find((f) => f.length >= 3 && (f[1] as string).split(',').includes(controller));
    if (!own) return false;
    dir = `/sys/fs/cgroup/${controller}${own.slice(2).join(':').replace(/\/$/, '')}/gpuq-probe-${process.pid}`;
  }
  try {
    mkdirSync(dir);
    rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

/** Waits until the job's program has written `name` into its work folder (it got that far). */
export async function waitForFile(dir: string, name: string): Promise<void> {
  expect(await until(() => existsSync(join(dir, 'work', name)), 20_000), `${name} never appeared`).toBe(true);
}

/** Cgroup folders still named after a job (gpuq-ID, or gpuq/ID), anywhere under /sys/fs/cgroup. */
export function jobCgroups(jobId: string): string[] {
  try {
    const out = execFileSync(
      'find',
      ['/sys/fs/cgroup', '-maxdepth', '8', '-type', 'd', '(', '-name', `gpuq-${jobId}`, '-o', '-name', jobId, ')'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
    return out.split('\n').filter(Boolean);
  } catch (e) {
    // find exits 1 on unreadable folders but still prints what it found
    return String((e as { stdout?: string }).stdout ?? '')
      .split('\n')
      .filter(Boolean);
  }
}
