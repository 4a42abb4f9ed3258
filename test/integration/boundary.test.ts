/**
 * The trust boundary (issue 10, items 1 and 3): a job must not write its own verdict nor signal
 * its supervisor, and it gets a clean environment. A real hostile program (fixtures/boundary/
 * attack.py) forges status.json and monitor.json, replaces job.lock, run.sh and monitor.py, and
 * SIGSTOPs / SIGKILLs the supervisor's processes it finds through /proc; the verdict must be the
 * one it really earned, and nothing of it may be left alive. As root the program runs as a uid
 * of its own ("uid"); as the unprivileged user gpuqrun in user, mount and pid namespaces
 * ("userns"); a node configured with "boundary": "none" says so, and a competition refuses it.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpuq, type Home, jobProcesses, makeHome, REPO, writeProgram } from '../helpers/cli.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import {
  ensureTestUser,
  expectGone,
  expectVerdict,
  pidFile,
  readJobFile,
  startHostile,
  TEST_USER,
  waitForFile,
  waitHostile,
} from '../helpers/hostile.js';

/** The account a runAs node runs programs as in these tests (nothing else runs as it). */
const RUN_AS_USER = 'gpuqjob';

/** Creates a system account when missing (root only); false when that is impossible. */
function ensureUser(name: string): boolean {
  if (!isRoot) return false;
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' });
    return true;
  } catch {
    /* create it */
  }
  try {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

/** The node's pid of a process known by `nsPid` in a nested pid namespace of `user`'s, or null. */
function hostPid(nsPid: number, uid: number): number | null {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const st = readFileSync(`/proc/${name}/status`, 'utf8');
      const ns = /^NSpid:\s+(.+)$/m.exec(st)?.[1]?.trim().split(/\s+/).map(Number) ?? [];
      const u = Number(/^Uid:\s+(\d+)/m.exec(st)?.[1]);
      if (ns.length === 2 && ns[1] === nsPid && u === uid) return Number(name);
    } catch {
      // gone
    }
  }
  return null;
}

const ATTACK = join(REPO, 'test', 'fixtures', 'boundary', 'attack.py');
const isRoot = process.getuid?.() === 0;
const canUser = ensureTestUser();
/** What the submitter's environment holds that a job must never see. */
const SECRETS = { SSH_AUTH_SOCK: '/tmp/gpuq-agent.sock', AWS_SECRET_ACCESS_KEY: 'hunter2' };
/** The documented environment of a job (README, "Trust model"), besides its --env values. */
const JOB_ENV = [
  'PATH',
  'HOME',
  'LANG',
  'LC_ALL',
  'USER',
  'LOGNAME',
  'TMPDIR',
  'OMP_NUM_THREADS',
  'MKL_NUM_THREADS',
  'OPENBLAS_NUM_THREADS',
  'NUMEXPR_NUM_THREADS',
  'GPUQ_JOB_ID',
  'PYTHONUNBUFFERED',
  'PYTHONDONTWRITEBYTECODE',
  'CUDA_VISIBLE_DEVICES',
  'EXTRA',
];

/** Each test runs a few real jobs at once on a machine other suites load too. */
const SLOW = { timeout: 240_000 };

const homes: Home[] = [];
async function home(config?: unknown, runAs?: string): Promise<Home> {
  // Concurrent tests: the homes are cleaned up once, after all of them (autoCleanup would tie a
  // home's cleanup to whichever test finished first).
  const h = await makeHome(config, SECRETS, { ...(runAs ? { runAs } : {}), autoCleanup: false });
  homes.push(h);
  return h;
}
afterAll(async () => {
  await Promise.all(homes.splice(0).map((h) => h.cleanup()));
});

interface Report {
  results: Record<string, string | number>;
  uid: number;
  capEff: string | null;
  env: string[];
}
interface JobJson {
  id: string;
  remote: { dir: string; boundary?: string | null } | null;
  verdict: { class: string; exitCode: number | null } | null;
}

/** Submits attack.py and waits; returns the CLI's exit code, the job, its status and its report. */
async function attack(h: Home, opts: string[] = []) {
  const r = await gpuq(h, ['submit', ATTACK, '--wait', '--json', '--env', 'EXTRA=1', ...opts]);
  let job: JobJson;
  try {
    job = JSON.parse(r.stdout) as JobJson;
  } catch {
    throw new Error(`submit exited ${r.code} without a job: ${r.stderr}`);
  }
  const status = readJobFile(job as never, 'status.json') ?? {};
  const out = readJobFile(job as never, 'stdout.log') as unknown as Report | null;
  const show = JSON.parse((await gpuq(h, ['show', job.id, '--json'])).stdout) as JobJson;
  return { code: r.code, stderr: r.stderr, job, status, report: out, show };
}

/** Every attempt was refused, the verdict is the earned one, the env is clean, nothing is left. */
function expectHeld(a: Awaited<ReturnType<typeof attack>>, boundary: string, verdict: string, code: number): void {
  const where = `${a.stderr} | status ${JSON.stringify(a.status)} | report ${JSON.stringify(a.report)}`;
  expect(a.job.verdict?.class, where).toBe(verdict);
  expect(a.code, where).toBe(code);
  expect(a.status.boundary, where).toBe(boundary);
  expect(a.show.remote?.boundary, where).toBe(boundary);
  const report = a.report as Report;
  expect(report, where).not.toBeNull();
  for (const [what, outcome] of Object.entries(report.results)) {
    if (what !== 'supervisor pids seen') expect(outcome, `${what} was let through`).not.toBe('ok');
  }
  expect(report.capEff, 'the program kept capabilities').toMatch(/^0+$/);
  for (const k of report.env) expect(JOB_ENV, `${k} leaked into the job`).toContain(k);
  for (const k of ['SSH_AUTH_SOCK', 'AWS_SECRET_ACCESS_KEY', 'GPUQ_HOME']) expect(report.env).not.toContain(k);
  expect(jobProcesses(a.job.id), 'processes of the job still alive').toEqual([]);
}

describe.runIf(isRoot).concurrent('as root: the program runs as a uid of its own', SLOW, () => {
  it('an exit 7 after every attack stays failed (exit 7), under another uid', async () => {
    const a = await attack(await home());
    expectHeld(a, 'uid', 'failed', 10);
    expect(a.job.verdict?.exitCode).toBe(7);
    expect(a.status.exitCode).toBe(7);
    const uid = a.status.jobUid as number;
    expect(uid).toBeGreaterThanOrEqual(2_000_000_000);
    expect(a.report?.uid).toBe(uid);
    // /proc shows it the supervisor; it could not stop or kill it.
    expect(Number(a.report?.results['supervisor pids seen'])).toBeGreaterThanOrEqual(1);
  });

  it('a program that attacks and then runs on is timed out, not succeeded', async () => {
    const a = await attack(await home(), ['--arg', '--stay', '--timeout', '4s']);
    expectHeld(a, 'uid', 'timeout', 11);
  });

  // An account of its own: one that runs anything else (a supervisor, say) is open to the job.
  it.runIf(ensureUser(RUN_AS_USER))('a configured runAs account is used', async () => {
    const a = await attack(await home({ nodes: { local: { transport: 'local', runAs: RUN_AS_USER } } }));
    expectHeld(a, 'uid', 'failed', 10);
    expect(a.report?.uid).toBe(a.status.jobUid);
    expect(a.report?.uid).not.toBe(0);
  });
});

describe
  .runIf(canUser)
  .concurrent(`as the unprivileged user ${TEST_USER}: user, mount and pid namespaces`, SLOW, () => {
    it('an exit 7 after every attack stays failed (exit 7); the supervisor is out of view', async () => {
      const a = await attack(await home(undefined, TEST_USER));
      expectHeld(a, 'userns', 'failed', 10);
      expect(a.status.exitCode).toBe(7);
      expect(a.report?.results['supervisor pids seen']).toBe(0);
    });

    it('a program that attacks and then runs on is timed out, not succeeded', async () => {
      const a = await attack(await home(undefined, TEST_USER), ['--arg', '--stay', '--timeout', '4s']);
      expectHeld(a, 'userns', 'timeout', 11);
    });

    it('gpuq cancel takes a setsid + double-forked escapee with a cleared environment with it', async () => {
      const h = await home(undefined, TEST_USER);
      const { id, dir } = await startHostile(h, 'escape.py', [
        '--arg',
        '--stay',
        '--arg',
        '--clear-env',
        '--timeout',
        '60s',
      ]);
      await waitForFile(dir, 'escaped.pid');
      const uid = Number(execFileSync('id', ['-u', TEST_USER], { encoding: 'utf8' }).trim());
      // escaped.pid holds its pid inside the job's pid namespace; find it on the node.
      const pid = hostPid(Number(readFileSync(join(dir, 'work', 'escaped.pid'), 'utf8').trim()), uid);
      expect(pid, 'the escapee on the node').not.toBeNull();
      expect((await gpuq(h, ['cancel', id])).code).toBe(0);
      const f = await waitHostile(h, id);
      expectVerdict(f, 'cancelled', undefined, 16);
      expect(f.status.boundary).toBe('userns');
      await expectGone(pid as number);
      expect(pidFile(f.job, 'escaped.pid')).toBeGreaterThan(0);
    });
  });

describe.concurrent('a node without a trust boundary', SLOW, () => {
  // A generous probe bound: `nodes` on a loaded machine may need more than the default 10 s.
  const none = {
    nodes: { local: { transport: 'local', boundary: 'none', connectTimeout: '60s' } },
    competitions: { digits: {} },
  };

  // (attack.py would win here: without a boundary a job can write its own verdict.) One job
  // serves both: submitted for a competition that does not require a boundary.
  it('runs the job as today (also for a competition that does not require a boundary) and says so in show and nodes', async () => {
    const h = await home({ ...none, competitions: { digits: {}, open: { requireBoundary: false } } });
    const plain = await writeProgram('plain.py', 'import sys\nsys.exit(7)\n');
    const r = await gpuq(h, ['submit', plain, '--competition', 'open', '--wait', '--json']);
    expect(r.code, r.stderr).toBe(10);
    const job = JSON.parse(r.stdout) as JobJson;
    expect(readJobFile(job as never, 'status.json')?.boundary).toBe('none');
    expect(job.remote?.boundary).toBe('none');
    const show = await gpuq(h, ['show', job.id]);
    expect(show.stdout).toMatch(/Boundary\s+none: the job ran without a trust boundary/);
    const nodes = await gpuq(h, ['nodes']);
    expect(nodes.stdout, nodes.stderr).toMatch(/no trust boundary/);
    const json = JSON.parse((await gpuq(h, ['nodes', '--json'])).stdout) as { status: { boundary: string } }[];
    expect(json[0]?.status.boundary).toBe('none');
  });

  it('refuses a competition that requires a boundary (the default): exit 2, nothing recorded', async () => {
    const h = await home(none);
    const r = await gpuq(h, ['submit', ATTACK, '--competition', 'digits']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/requires a trust boundary/);
    expect(JSON.parse((await gpuq(h, ['list', '--json'])).stdout)).toEqual([]);
  });
});

describe.runIf(canUser)('over SSH (the private sshd, an unprivileged account)', SLOW, () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await startSshd({ alias: 'boundary-node' });
  });
  afterAll(async () => {
    await sshd?.cleanup();
  });

  it('the attacks fail there too, and the node reports its boundary', async () => {
    const h = await home({ nodes: { n: sshd.configEntry() } });
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(h.dir, 'known_hosts'), `${sshd.knownHostsLine('right')}\n`);
    const a = await attack(h, ['--timeout', '60s']);
    const where = `${a.stderr} | ${JSON.stringify(a.status)} | ${JSON.stringify(a.report)}`;
    expect(a.job.verdict?.class, where).toBe('failed');
    expect(a.code, where).toBe(10);
    expect(a.status.boundary).toBe('userns');
    for (const [what, outcome] of Object.entries(a.report?.results ?? {}))
      if (what !== 'supervisor pids seen') expect(outcome, `${what} was let through`).not.toBe('ok');
    const json = JSON.parse((await gpuq(h, ['nodes', '--json'])).stdout) as { status: { boundary: string } }[];
    expect(json[0]?.status.boundary).toBe('userns');
  });
});
