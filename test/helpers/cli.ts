/**
 * Runs the real gpuq binary (bin/gpuq.js over dist/, built by `npm test`'s tsc step) in a
 * private GPUQ_HOME, as a user would. Every test gets its own home so ledgers never mix.
 *
 *   const home = await makeHome();            // temp GPUQ_HOME with the embedded local node
 *   const r = await gpuq(home, ['submit', file, '--wait']);
 *   expect(r.code).toBe(0);
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(REPO, 'bin', 'gpuq.js');

/**
 * The system's python3, named in every test home: a PATH shim (pyenv's) may take seconds to
 * start on a loaded machine, longer than a short limit leaves the program.
 */
export const SYSTEM_PYTHON = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p)) ?? 'python3';

export interface Home {
  dir: string;
  env: NodeJS.ProcessEnv;
  /** gpuq runs as this (unprivileged) user through runuser; see makeHome's runAs. */
  runAs?: string;
  cleanup(): Promise<void>;
}

/** runuser (util-linux), to run gpuq as an unprivileged user in tests that start as root. */
export const RUNUSER =
  ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find((p) => existsSync(p)) ?? 'runuser';

/** uid and gid of a user, or null when there is no such user (reads /etc/passwd). */
export function userIds(name: string): { uid: number; gid: number } | null {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    /* no passwd file: no such user */
  }
  return null;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * A temporary GPUQ_HOME (config.json optional) with the environment to use it. With `runAs`
 * (tests running as root), the home belongs to that user and gpuq runs as that user, with a
 * plain system PATH (root's PATH shims are not the user's). Removed, with whatever is left of its
 * jobs, when the test ends (unless `autoCleanup: false`, for concurrent tests: call cleanup()).
 */
export async function makeHome(
  config?: unknown,
  extraEnv: NodeJS.ProcessEnv = {},
  opts: { runAs?: string; autoCleanup?: boolean } = {},
): Promise<Home> {
  const dir = await mkdtemp(join(tmpdir(), 'gpuq-home-'));
  const cleanup = async () => {
    killJobsOf(dir);
    killProcessesIn(dir);
    await rm(dir, { recursive: true, force: true });
  };
  // Concurrent tests must clean up themselves: a global onTestFinished may land on another test.
  if (opts.autoCleanup !== false) atTestEnd(cleanup);
  if (config !== undefined) await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // The system interpreter before any shim: the local node runs `python3` from this PATH.
    PATH: `${dirname(SYSTEM_PYTHON)}:${process.env.PATH ?? ''}`,
    GPUQ_HOME: dir,
    NO_COLOR: '1',
    ...extraEnv,
  };
  delete env.FORCE_COLOR;
  // Node reads every certificate of NODE_EXTRA_CA_CERTS at startup (~50 ms of CPU each run where
  // this machine sets it); gpuq never speaks TLS, and the suite starts it thousands of times.
  if (!('NODE_EXTRA_CA_CERTS' in extraEnv)) delete env.NODE_EXTRA_CA_CERTS;
  if (opts.runAs !== undefined) {
    const ids = userIds(opts.runAs);
    if (ids === null) throw new Error(`no user ${opts.runAs}: create it with useradd`);
    await chown(dir, ids.uid, ids.gid);
    if (config !== undefined) await chown(join(dir, 'config.json'), ids.uid, ids.gid);
    env.PATH = extraEnv.PATH ?? `${dirname(SYSTEM_PYTHON)}:${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`;
    env.HOME = dir;
  }
  return { dir, env, runAs: opts.runAs, cleanup };
}

/** Starts gpuq without waiting (for concurrent runs, follow mode, killing it mid-way). */
export function startGpuq(
  home: Home,
  args: string[],
  opts: { cwd?: string; input?: string } = {},
): { child: ChildProcess; done: Promise<RunResult>; killAll: (signal: NodeJS.Signals) => void } {
  const argv = [process.execPath, BIN, ...args];
  if (home.runAs !== undefined) argv.unshift(RUNUSER, '-u', home.runAs, '--');
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd: opts.cwd ?? REPO,
    env: home.env,
    stdio: ['pipe', 'pipe', 'pipe'],
    // its own process group, so killAll reaches gpuq under runuser too (killing runuser alone
    // leaves gpuq holding the pipes, and `done` waits for them)
    detached: true,
  });
  const killAll = (signal: NodeJS.Signals) => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin?.end(opts.input ?? '');
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, killAll };
}

/** Runs gpuq to completion. */
export function gpuq(home: Home, args: string[], opts: { cwd?: string; input?: string } = {}): Promise<RunResult> {
  return startGpuq(home, args, opts).done;
}

/** Runs gpuq with --json appended and parses stdout. */
export async function gpuqJson<T = unknown>(home: Home, args: string[]): Promise<T> {
  const r = await gpuq(home, [...args, '--json']);
  if (r.code !== 0 && r.stdout.trim() === '') throw new Error(`gpuq ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/**
 * Runs `fn` when the current test ends, pass or fail; outside a test (a beforeAll), the caller
 * cleans up. Not for concurrent tests (vitest cannot tell which one is current).
 */
export function atTestEnd(fn: () => unknown): void {
  try {
    onTestFinished(async () => {
      await fn();
    });
  } catch {
    // not inside a test
  }
}

/** A temp folder removed when the current test ends (inside a test), so runs leave no litter. */
export async function tempDir(prefix = 'gpuq-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  atTestEnd(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * SIGKILLs what is left of the jobs a home's ledger knows (after a failed test, say), so no job
 * outlives its test: processes carrying the job's marker, and a supervisor whose command line
 * still names the job's folder (never a pid that was reused).
 */
export function killJobsOf(homeDir: string): void {
  let jobs: Array<{ id: string; remote?: { supervisorPid?: number | null } | null }>;
  try {
    jobs = (JSON.parse(readFileSync(join(homeDir, 'ledger.json'), 'utf8')) as { jobs: typeof jobs }).jobs ?? [];
  } catch {
    return;
  }
  for (const job of jobs) {
    const pids = jobProcesses(job.id);
    const sup = job.remote?.supervisorPid;
    if (typeof sup === 'number') {
      try {
        if (readFileSync(`/proc/${sup}/cmdline`, 'latin1').includes(`/jobs/${job.id}/`)) pids.push(sup);
      } catch {
        // gone
      }
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
}

/**
 * SIGKILLs every process working in a folder (its cwd under it): what is left of a home's jobs
 * that killJobsOf cannot name, such as the timer of a supervisor a test killed, which stands down
 * only at its next check (up to a minute later).
 */
export function killProcessesIn(dir: string): void {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cwd = readlinkSync(`/proc/${name}/cwd`);
      if (cwd === dir || cwd.startsWith(`${dir}/`)) process.kill(Number(name), 'SIGKILL');
    } catch {
      // gone, or not ours to read
    }
  }
}

/** Writes a program into a fresh temp folder (removed when the test ends) and returns its path. */
export async function writeProgram(name: string, text: string): Promise<string> {
  const dir = await tempDir('gpuq-prog-');
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/** A program file every user can read, for tests that submit as another user (gpuqrun). */
export async function writeSharedProgram(name: string, text: string): Promise<string> {
  const path = await writeProgram(name, text);
  await chmod(dirname(path), 0o755);
  await chmod(path, 0o644);
  return path;
}

/**
 * A config whose local node runs jobs without a trust boundary (README, "Trust model"): the only
 * place a job can still plant files in its folder or signal its supervisor, for the tests that
 * check gpuq survives that. boundary.test.ts checks the same attacks fail behind a boundary.
 */
export const NO_BOUNDARY_CONFIG = { nodes: { local: { transport: 'local', boundary: 'none' } } };

/** Whether a pid is alive (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Polls `check` every 50 ms until it returns true or `ms` pass. */
export async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

/** Pids of live processes whose environment carries a job's GPUQ_JOB_ID marker (zombies read empty). */
export function jobProcesses(jobId: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const env = readFileSync(`/proc/${name}/environ`, 'latin1');
      if (env.split('\0').includes(`GPUQ_JOB_ID=${jobId}`)) found.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

export interface Gate {
  /** The file whose existence opens the gate. */
  path: string;
  /** Python source defining `gate_wait()`, which blocks until the gate opens, or 60 s pass. */
  pyDef: string;
  /** Opens the gate: the waiting program goes on. */
  open(): Promise<void>;
  /** Opens the gate (nothing waits past the test) and removes its folder; also run when the test ends. */
  cleanup(): Promise<void>;
}

/**
 * A gate file for synchronising a test with a job's program instead of sleeping: the program
 * waits (at most 60 s, so nothing outlives a failed test by much) until the test opens it. Its
 * folder is 0755, so a job running as another user (an SSH node's, runuser's) sees it. In `dir`
 * when given (the caller's folder, left in place), else a folder of its own. Opened and removed
 * when the test ends, unless `autoCleanup: false` (concurrent tests: a global hook may land on
 * another test, so they call cleanup() themselves).
 */
export async function makeGate(opts: { dir?: string; autoCleanup?: boolean } = {}): Promise<Gate> {
  const own = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'gpuq-gate-')));
  if (own) await chmod(dir, 0o755);
  const path = join(dir, own ? 'open' : 'gate-open');
  const open = () => writeFile(path, '');
  const cleanup = async () => {
    await open().catch(() => {});
    if (own) await rm(dir, { recursive: true, force: true });
  };
  if (opts.autoCleanup !== false) atTestEnd(cleanup);
  return {
    path,
    pyDef:
      `def gate_wait():\n    import os, time\n    end = time.time() + 60\n` +
      `    while not os.path.exists(${JSON.stringify(path)}) and time.time() < end:\n` +
      `        time.sleep(0.05)\n`,
    open,
    cleanup,
  };
}

/** Child processes of a pid (from /proc/PID/task/PID/children), with their command names. */
export function childrenOf(pid: number): Array<{ pid: number; comm: string }> {
  let kids: number[];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  const out: Array<{ pid: number; comm: string }> = [];
  for (const kid of kids) {
    try {
      out.push({ pid: kid, comm: readFileSync(`/proc/${kid}/comm`, 'latin1').trim() });
    } catch {
      // gone
    }
  }
  return out;
}

/** Whether a pid is a zombie (ended, not yet reaped). */
export function isZombie(pid: number): boolean {
  try {
    return /^\S+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
}
