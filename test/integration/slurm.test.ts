/**
 * A Slurm node end to end, against a real single-node Slurm cluster of its own
 * (test/helpers/slurm.ts: munged, slurmctld, slurmd, two GRES GPUs on stand-in devices): the
 * built CLI submits through sbatch, the same supervisor runs the job, Slurm queues it and gives
 * it its GPUs; verdicts from the supervisor, and from Slurm where only Slurm knows (an scancel
 * from outside, a job Slurm forgot). One cluster for the file; the cases run at once, the one
 * that stops slurmctld last.
 */
import { spawn } from 'node:child_process';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { need } from '../helpers/capability.js';
import {
  gpuq,
  gpuqJson,
  type Gate,
  type Home,
  makeGate,
  makeHome,
  startGpuq,
  SYSTEM_PYTHON,
  until,
  writeProgram,
} from '../helpers/cli.js';
import { type SlurmCluster, slurmMissing, startSlurm } from '../helpers/slurm.js';
import { type Sshd, startSshd } from '../helpers/sshd.js';

const can = need(slurmMissing() === null, `a Slurm cluster of its own (${slurmMissing()})`);

let slurm: SlurmCluster;
let h: Home;
let sshd: Sshd;
const progs: Record<string, string> = {};
let gate: Gate;
/** The node's job folders (the "shared file system" of a one-node cluster). */
const WORK = join(tmpdir(), `gpuq-slurm-work-${process.pid}`);

const node = (extra: Record<string, unknown> = {}) => ({
  transport: 'slurm',
  partition: 'gpu',
  python: SYSTEM_PYTHON,
  ...extra,
});

beforeAll(async () => {
  if (!can.run) return;
  can.check();
  slurm = await startSlurm();
  // The login user's sbatch finds the cluster as gpuq's own does: SLURM_CONF.
  sshd = await startSshd({ alias: 'slurm-login', extraConfig: `SetEnv SLURM_CONF=${slurm.conf}` });
  h = await makeHome(
    {
      defaults: { memory: '256m', timeout: '60s', grace: '3s' },
      nodes: {
        sl: node({ workdir: WORK }),
        // Pending for an hour (BeginTime): a job Slurm holds, whatever else runs.
        held: node({ workdir: WORK, sbatchArgs: ['--begin=now+3600'] }),
        bad: node({ partition: 'nope', workdir: WORK }),
        // A generous connect timeout: this file's jobs and Slurm's daemons load the machine.
        login: sshd.configEntry({ transport: 'slurm', partition: 'gpu', connectTimeout: '30s' }),
      },
    },
    { ...slurm.env, GPUQ_SSH_CONFIG: sshd.sshConfigPath },
    { autoCleanup: false },
  );
  await writeFile(join(h.dir, 'known_hosts'), `${sshd.knownHostsLine('right')}\n`);
  progs.hello = await writeProgram(
    'hello.py',
    'import os\nprint("hello", os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("CUDA_DEVICE_ORDER"))\n',
  );
  progs.sleep = await writeProgram('sleep.py', 'import time\nprint("up", flush=True)\ntime.sleep(120)\n');
  progs.hog = await writeProgram(
    'hog.py',
    'chunks = []\nwhile True:\n    b = bytearray(8 * 1024 * 1024)\n    for i in range(0, len(b), 4096):\n        b[i] = 1\n    chunks.append(b)\n',
  );
  // Written here, not in a concurrent test: a test's temp files go when any test ends.
  gate = await makeGate({ autoCleanup: false });
  progs.gpu = await writeProgram(
    'gpu.py',
    `${gate.pyDef}import os, time\nprint(os.environ.get("CUDA_VISIBLE_DEVICES"), time.time(), flush=True)\n` +
      'gate_wait()\nprint(time.time(), flush=True)\n',
  );
  for (const p of Object.values(progs)) await chmod(p, 0o644);
}, 120_000);

afterAll(async () => {
  await gate?.cleanup();
  await h?.cleanup();
  await Promise.all([slurm?.cleanup(), sshd?.cleanup()]);
  await rm(WORK, { recursive: true, force: true });
}, 60_000);

const slurmIdOf = (j: Job) => j.remote?.slurmJobId as string;
/** Submits and returns the job as recorded (queued or running). */
async function submit(args: string[]): Promise<Job> {
  const r = await gpuq(h, ['submit', ...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Job;
}
/** Until the job's supervisor has started the program (its status.json, read here: one machine). */
async function untilRunning(job: Job): Promise<void> {
  const ok = await until(async () => {
    try {
      return /"state":"(running|exited)"/.test(await readFile(join(job.remote?.dir as string, 'status.json'), 'utf8'));
    } catch {
      return false;
    }
  }, 60_000);
  expect(ok, `job ${job.id} did not start`).toBe(true);
}

/**
 * Holds a shared lock on a job's job.lock, as a client's probe does for a moment, until the job's
 * batch script waits for the lock (`flock -x` running in the job folder: "waited") or has given
 * up on it (its words in slurm.out: "refused"); at most 60 s ("timeout").
 */
function holdShared(dir: string): { held: Promise<void>; done: Promise<string> } {
  const script = [
    'echo held',
    'for i in $(seq 600); do',
    '  [ -s slurm.out ] && { echo refused; exit 0; }',
    '  for p in $(pgrep -x flock); do',
    '    [ "$(readlink "/proc/$p/cwd")" = "$PWD" ] || continue',
    '    case $(tr "\\0" " " <"/proc/$p/cmdline") in "flock -x "*) echo waited; exit 0;; esac',
    '  done',
    '  sleep 0.1',
    'done',
    'echo timeout',
  ].join('\n');
  const c = spawn('flock', ['-s', 'job.lock', 'bash', '-c', script], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let heard: () => void = () => undefined;
  const held = new Promise<void>((r) => (heard = r));
  c.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (out.includes('held')) heard();
  });
  const done = new Promise<string>((r) => c.on('close', () => r(out.replace('held', '').trim())));
  return { held, done };
}

describe.runIf(can.run).concurrent('a Slurm node', () => {
  it('runs hello world through sbatch: the Slurm job id recorded, no GPU asked so none seen', async () => {
    const r = await gpuq(h, ['submit', progs.hello as string, '--node', 'sl', '--wait', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const job = JSON.parse(r.stdout) as Job;
    expect(job.verdict?.class).toBe('succeeded');
    expect(slurmIdOf(job)).toMatch(/^\d+$/);
    expect(job.gpus).toEqual([]);
    const logs = await gpuq(h, ['logs', job.id]);
    expect(logs.stdout).toBe('hello  PCI_BUS_ID\n');
    const list = await gpuq(h, ['list', '--all']);
    expect(list.stdout).toContain(`sl:${slurmIdOf(job)}`);
  });

  it("runs three 1-GPU jobs on two GRES GPUs: two at once on distinct devices, the third queued with Slurm's reason", async () => {
    try {
      const prog = progs.gpu as string;
      const jobs = await Promise.all([1, 2].map(() => submit([prog, '--node', 'sl', '--gpus', '1'])));
      await Promise.all(jobs.map((j) => untilRunning(j)));
      const third = await submit([prog, '--node', 'sl', '--gpus', '1']);
      expect(third.state).toBe('queued');
      const shown = await gpuqJson<Job>(h, ['show', third.id]);
      expect(shown.state).toBe('queued');
      expect(shown.queue?.reason).toMatch(/^Slurm: (Resources|Priority|waiting to be scheduled)/);
      expect(shown.queue?.position).toBe(1);
      // logs -f of the job Slurm still holds waits for it to run, then follows it to its end.
      const follow = startGpuq(h, ['logs', '-f', third.id]);
      // A client's probe holds job.lock shared for a moment; this one holds it while the third
      // job's batch script starts, until that script waits for the lock (or, as before the fix,
      // gave up at once: the job ended unstarted, lost, and the wait below exited 17).
      const holder = holdShared(third.remote?.dir as string);
      await holder.held;
      await gate.open();
      const w = await gpuq(h, ['wait', ...jobs.map((j) => j.id), third.id, '--json']);
      expect(w.code, w.stdout + w.stderr).toBe(0);
      const done = JSON.parse(w.stdout) as Job[];
      // Each program's own clock and device, from its stdout in the job folder.
      const spans = await Promise.all(
        done.map(async (j) => {
          const out = await readFile(join(j.remote?.dir as string, 'stdout.log'), 'utf8');
          const [first, second] = out.trim().split('\n');
          const [dev, start] = (first as string).split(' ');
          return { dev, start: Number(start), end: Number(second) };
        }),
      );
      expect(spans[0]?.dev).not.toBe(spans[1]?.dev);
      // The devices Slurm gave are what the ledger records.
      expect(done.map((j) => String(j.gpus[0]))).toEqual(spans.map((x) => x.dev));
      // The third started only after one of the first two ended, on the device it freed.
      const [s3] = spans.slice(2);
      expect(Math.min(spans[0]!.end, spans[1]!.end)).toBeLessThanOrEqual(s3!.start);
      expect(['0', '1']).toContain(s3?.dev);
      expect(await holder.done).toBe('waited');
      const followed = await follow.done;
      expect(followed.code, followed.stderr).toBe(0);
      expect(followed.stdout).toBe(await readFile(join(done[2]?.remote?.dir as string, 'stdout.log'), 'utf8'));
    } finally {
      await gate.open();
    }
  });

  it('cancels a pending job with scancel and a running one through its supervisor', async () => {
    const [pending, running] = await Promise.all([
      submit([progs.sleep as string, '--node', 'held']),
      submit([progs.sleep as string, '--node', 'sl']),
    ]);
    expect(pending.state).toBe('queued');
    await untilRunning(running);
    const c = await gpuq(h, ['cancel', pending.id, running.id]);
    expect(c.code, c.stderr).toBe(0);
    const [p, r] = await gpuqJson<Job[]>(h, ['wait', pending.id, running.id]);
    if (!p || !r) throw new Error('wait --json printed no jobs');
    expect(p.verdict?.class).toBe('cancelled');
    expect(p.verdict?.summary).toMatch(/queued in Slurm/);
    expect(r.verdict?.class).toBe('cancelled');
    expect(r.verdict?.signal).toBe('SIGTERM');
    expect(slurm.run('squeue', ['-h', '-j', `${slurmIdOf(p)},${slurmIdOf(r)}`]).trim()).toBe('');
  });

  it('names a memory hog under --memory oom, and a job over --timeout timeout', async () => {
    const [hog, slow] = await Promise.all([
      submit([progs.hog as string, '--node', 'sl', '--memory', '96m']),
      submit([progs.sleep as string, '--node', 'sl', '--timeout', '3s', '--grace', '1s']),
    ]);
    const w = await gpuq(h, ['wait', hog.id, slow.id, '--json']);
    const [a, b] = JSON.parse(w.stdout) as Job[];
    expect(a?.verdict?.class, w.stdout).toBe('oom');
    expect(b?.verdict?.class, w.stdout).toBe('timeout');
    expect(b?.verdict?.timedOut).toBe(true);
  });

  it('names an scancel from outside gpuq as such, not as a gpuq cancel', async () => {
    const job = await submit([progs.sleep as string, '--node', 'sl']);
    await untilRunning(job);
    slurm.run('scancel', [slurmIdOf(job)]);
    const w = await gpuq(h, ['wait', job.id, '--json']);
    expect(w.code, w.stdout + w.stderr).toBe(15);
    const [done] = JSON.parse(w.stdout) as Job[];
    if (!done) throw new Error('wait --json printed no job');
    expect(done.verdict?.class).toBe('signaled');
    expect(done.verdict?.cause).toBe('slurm_cancelled');
    expect(done.verdict?.summary).toMatch(/from outside gpuq/);
    expect(done.verdict?.evidence).toContain(`Slurm job ${slurmIdOf(job)}: CANCELLED`);
  });

  it('refuses a bad partition quoting Slurm, exit 2, nothing running', async () => {
    const r = await gpuq(h, ['submit', progs.hello as string, '--node', 'bad', '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Slurm refused .*[Ii]nvalid partition/);
    const jobs = await gpuqJson<Job[]>(h, ['list', '--node', 'bad', '--all']);
    expect(jobs.every((j) => j.state === 'done' && j.verdict?.cause === 'not_started')).toBe(true);
  });

  it('submits through the login node over SSH, and `nodes` shows the partition', async () => {
    const r = await gpuq(h, ['submit', progs.hello as string, '--node', 'login', '--wait', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const job = JSON.parse(r.stdout) as Job;
    expect(job.verdict?.class).toBe('succeeded');
    expect(slurmIdOf(job)).toMatch(/^\d+$/);
    expect(job.remote?.boundary).not.toBe('uid'); // the login user is not root: namespaces or none
    const n = await gpuq(h, ['nodes', 'login']);
    expect(n.code, n.stderr).toBe(0);
    expect(n.stdout).toMatch(/Slurm partition gpu: nodes \d+ idle, \d+ mixed, \d+ allocated, 0 down; GPUs \d\/2 free/);
  });
});

describe.runIf(can.run)('a Slurm node whose controller stops', () => {
  it('refuses a submit with exit 3 quoting Slurm, and calls a job Slurm forgot lost', async () => {
    const held = await submit([progs.sleep as string, '--node', 'held']);
    expect(held.state).toBe('queued');
    // Slurm's commands retry an absent controller for MessageTimeout (10 s and more): 3 s here.
    const quick = { ...h, env: { ...h.env, SLURM_CONF: await slurm.clientConf({ messageTimeoutS: 3 }) } };
    await slurm.stopController();
    // A wait meanwhile says Slurm does not answer and keeps waiting: silence is no verdict.
    const waiting = startGpuq(quick, ['wait', held.id]);
    let said = '';
    waiting.child.stderr?.on('data', (d: Buffer) => (said += d.toString()));
    const r = await gpuq(quick, ['submit', progs.hello as string, '--node', 'sl']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/Slurm could not be reached.*(Unable to contact|connect)/i);
    expect(await until(() => /Slurm did not answer/.test(said), 30_000), said).toBe(true);
    // Back with its state cleared: the held job is in neither squeue nor sacct.
    await slurm.startController({ clear: true });
    const w = await waiting.done;
    expect(w.code, w.stdout + w.stderr).toBe(17);
    const done = await gpuqJson<Job>(h, ['show', held.id]);
    expect(done.verdict?.cause).toBe('slurm_vanished');
  });
});
