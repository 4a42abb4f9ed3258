/**
 * The node-side GPU queue (templates/queue.py, the leases in templates/wrapper.sh): real CLI
 * processes, local nodes sharing one lock folder, a stand-in nvidia-smi for foreign GPU use. The
 * queue is judged from the programs' own clocks (each prints time.time() at start and end).
 * Tests run concurrently, each with its own lock folder.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import {
  alive,
  type Gate,
  gpuq,
  gpuqJson,
  type Home,
  jobProcesses,
  makeGate,
  makeHome,
  SYSTEM_PYTHON,
  until,
} from '../helpers/cli.js';

interface Setup {
  homes: Home[];
  /** A folder of the test's own (writeProgram's folders are removed by another concurrent test's end). */
  base: string;
  lockDir: string;
  cleanup(): Promise<void>;
}

/** `n` homes (submitters) whose local node has `gpus` GPUs and one shared lock folder. */
async function setup(n: number, gpus: number, node: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}) {
  const base = await mkdtemp(join(tmpdir(), 'gpuq-q-'));
  const lockDir = join(base, 'locks');
  const homes: Home[] = [];
  for (let i = 0; i < n; i++) {
    const config = {
      nodes: {
        local: {
          transport: 'local',
          gpus: Array.from({ length: gpus }, (_, k) => k),
          lockDir,
          python: SYSTEM_PYTHON,
          ...node,
        },
      },
    };
    homes.push(await makeHome(config, env, { autoCleanup: false }));
  }
  const s: Setup = {
    homes,
    base,
    lockDir,
    cleanup: async () => {
      await Promise.all(homes.map((h) => h.cleanup()));
      await rm(base, { recursive: true, force: true });
    },
  };
  return s;
}

/** A program that prints its start (time, CUDA variables), waits at the gate (or not), prints its end. */
async function timedProgram(s: Setup, gate: Gate | null): Promise<string> {
  const src =
    'import os, time\n' +
    'print("start", time.time(), os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("CUDA_DEVICE_ORDER"), flush=True)\n' +
    // the gate's own wait, bounded under the jobs' 2-minute limit (the helper's gives up after 60 s,
    // which a loaded machine reached in the longer tests, so a holder ended before its time)
    (gate
      ? `end = time.time() + 110\nwhile not os.path.exists(${JSON.stringify(gate.path)}) and time.time() < end:\n    time.sleep(0.1)\n`
      : 'time.sleep(0.2)\n') +
    'print("end", time.time(), flush=True)\n';
  const path = join(s.base, `timed-${randomUUID()}.py`);
  await writeFile(path, src);
  return path;
}

async function submit(h: Home, prog: string, extra: string[] = []): Promise<string> {
  const r = await gpuq(h, ['submit', prog, '--gpus', '1', '--timeout', '2m', '--grace', '1s', '-q', ...extra]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout.trim();
}

const jobDir = (h: Home, id: string) => join(h.dir, 'nodes', 'local', 'jobs', id);

/** The program's own start/end times and CUDA variables from its stdout.log. */
async function times(h: Home, id: string) {
  const text = await readFile(join(jobDir(h, id), 'stdout.log'), 'utf8').catch(() => '');
  const start = /^start (\S+) (\S+) (\S+)$/m.exec(text);
  const end = /^end (\S+)$/m.exec(text);
  return {
    start: start ? Number(start[1]) : null,
    cuda: start ? start[2] : null,
    order: start ? start[3] : null,
    end: end ? Number(end[1]) : null,
  };
}

async function status(h: Home, id: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readFile(join(jobDir(h, id), 'status.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

async function queueFile(h: Home, id: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await readFile(join(jobDir(h, id), 'queue.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** Pids of the supervisor's own processes (`bash ./run.sh …`, timer included) working in `dir`. */
function supervisorShells(dir: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/cwd`) !== dir) continue;
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0').includes('./run.sh')) out.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

/** The job a queue.json says holds GPU 0 in `state` (held, orphan), or null. */
function gpuHeldBy(q: Record<string, unknown> | null, state: string): string | null {
  const g = (q?.gpus as Array<{ index: number; state: string; job: string | null }> | undefined)?.find(
    (x) => x.index === 0,
  );
  return g && g.state === state ? g.job : null;
}

describe.concurrent('the node-side GPU queue', () => {
  it('never runs two jobs on a 1-GPU node at once, whichever of two submitters sent them', async () => {
    const s = await setup(2, 1);
    try {
      const prog = await timedProgram(s, null);
      const [a, b] = s.homes as [Home, Home];
      const ids = await Promise.all([submit(a, prog), submit(b, prog), submit(a, prog), submit(b, prog)]);
      const own = (i: number) => (i % 2 === 0 ? a : b);
      const waits = await Promise.all([gpuq(a, ['wait', ids[0]!, ids[2]!]), gpuq(b, ['wait', ids[1]!, ids[3]!])]);
      for (const w of waits) expect(w.code, w.stderr).toBe(0);
      const spans = await Promise.all(ids.map((id, i) => times(own(i), id)));
      for (const sp of spans) expect(sp.start).not.toBeNull();
      for (const sp of spans) expect(sp.end).not.toBeNull();
      const sorted = [...spans].sort((x, y) => (x.start as number) - (y.start as number));
      for (let i = 1; i < sorted.length; i++)
        expect(sorted[i]!.start as number).toBeGreaterThanOrEqual(sorted[i - 1]!.end as number);
      for (const sp of spans) expect([sp.cuda, sp.order]).toEqual(['0', 'PCI_BUS_ID']);
    } finally {
      await s.cleanup();
    }
  });

  it('runs two 1-GPU jobs at once on a 2-GPU node, on different GPUs', async () => {
    const s = await setup(1, 2);
    const gate = await makeGate({ autoCleanup: false });
    try {
      const h = s.homes[0] as Home;
      const prog = await timedProgram(s, gate);
      const ids = await Promise.all([submit(h, prog), submit(h, prog)]);
      // both run at once, on GPUs 0 and 1 (list answers from the ledger while the node is slow to:
      // ask until it shows the GPUs the node leased)
      let mine: Job[] = [];
      const listed = async () => {
        mine = (await gpuqJson<Job[]>(h, ['list'])).filter((j) => ids.includes(j.id));
        return mine.flatMap((j) => j.gpus).length === 2;
      };
      expect(await until(listed, 60_000)).toBe(true);
      expect(mine.map((j) => j.state)).toEqual(['running', 'running']);
      expect(mine.flatMap((j) => j.gpus).sort()).toEqual([0, 1]);
      expect(
        await until(async () => (await times(h, ids[1]!)).start !== null && (await times(h, ids[0]!)).start !== null),
      ).toBe(true);
      const cuda = await Promise.all(ids.map(async (id) => (await times(h, id)).cuda));
      expect(cuda.sort()).toEqual(['0', '1']);
      await gate.open();
      expect((await gpuq(h, ['wait', ...ids])).code).toBe(0);
    } finally {
      await gate.cleanup();
      await s.cleanup();
    }
  });

  it('starts the next job within a second of SIGKILL to a running job (supervisor and program)', async () => {
    const s = await setup(1, 1);
    const gate = await makeGate({ autoCleanup: false });
    try {
      const h = s.homes[0] as Home;
      const a = await submit(h, await timedProgram(s, gate));
      const b = await submit(h, await timedProgram(s, null));
      expect((await status(h, b)).state).toBe('queued');
      expect(await until(async () => (await times(h, a)).start !== null)).toBe(true);
      // the head of the queue has seen the GPU held (it reports at least once a second)
      expect(await until(async () => gpuHeldBy(await queueFile(h, b), 'held') === a)).toBe(true);
      const sup = (await status(h, a)).supervisorPid as number;
      const victims = [sup, ...jobProcesses(a)];
      const killedAt = Date.now() / 1000;
      for (const p of victims) process.kill(p, 'SIGKILL');
      expect(await until(async () => (await times(h, b)).start !== null, 20_000)).toBe(true);
      // The supervisor takes the freed lease and starts the program (its startedAtMs) within a
      // second; the program's own first line comes after the boundary and python start up, which on
      // a loaded 2-core machine alone can take a second more.
      const leased = ((await status(h, b)).startedAtMs as number) / 1000;
      expect(leased - killedAt).toBeLessThan(1.0);
      expect(((await times(h, b)).start as number) - killedAt).toBeLessThan(5.0);
      expect((await gpuq(h, ['wait', b])).code).toBe(0);
    } finally {
      await gate.cleanup();
      await s.cleanup();
    }
  });

  it('keeps the GPU leased to a program whose supervisor alone was killed, until that orphan ends', async () => {
    const s = await setup(1, 1);
    const gate = await makeGate({ autoCleanup: false });
    try {
      const h = s.homes[0] as Home;
      const a = await submit(h, await timedProgram(s, gate));
      const b = await submit(h, await timedProgram(s, null));
      expect(await until(async () => (await times(h, a)).start !== null)).toBe(true);
      const sup = (await status(h, a)).supervisorPid as number;
      process.kill(sup, 'SIGKILL');
      expect(await until(() => !alive(sup))).toBe(true);
      // Nothing of the supervisor lingers: its wall-clock timer (a `bash ./run.sh` subshell in a's
      // folder, waiting on job.lock) ends with it, not at its next check a minute later.
      expect(await until(() => supervisorShells(jobDir(h, a)).length === 0, 10_000)).toBe(true);
      // b, at the head, sees the lease still held by a's orphaned program, and does not start
      expect(await until(async () => gpuHeldBy(await queueFile(h, b), 'orphan') === a)).toBe(true);
      expect((await times(h, b)).start).toBeNull();
      expect(jobProcesses(a).length).toBeGreaterThan(0);
      // show answers from the ledger when the node takes over 5 s (a loaded machine): ask until it reached it
      let reason: string | undefined;
      const held = async () => {
        reason = (await gpuqJson<Job>(h, ['show', b])).queue?.reason;
        return reason !== undefined;
      };
      expect(await until(held, 60_000)).toBe(true);
      expect(reason).toMatch(new RegExp(`GPU 0 is still held by a process of job ${a}`));
      await gate.open();
      expect(await until(async () => (await times(h, b)).start !== null, 20_000)).toBe(true);
      const orphanEnd = (await times(h, a)).end as number;
      expect(orphanEnd).not.toBeNull();
      expect((await times(h, b)).start as number).toBeGreaterThanOrEqual(orphanEnd);
      expect((await gpuq(h, ['wait', b])).code).toBe(0);
    } finally {
      await gate.cleanup();
      await s.cleanup();
    }
  });

  // One holder and one queue serve the order, the positions and reasons, a SIGKILLed waiter and a
  // cancel (two tests before, each with a holder of its own).
  it('runs queued jobs by priority, then in submit order; a SIGKILLed waiter leaves no entry (lost), cancel removes one at once', async () => {
    const s = await setup(1, 1);
    const gate = await makeGate({ autoCleanup: false });
    try {
      const h = s.homes[0] as Home;
      const a = await submit(h, await timedProgram(s, gate));
      const prog = await timedProgram(s, null);
      // b, c and d differ in priority, so the order they reach the node in does not matter; e
      // (priority 5 like c) comes after c
      const [b, c, d] = await Promise.all([
        submit(h, prog),
        submit(h, prog, ['--priority', '5']),
        submit(h, prog, ['--priority', '-3']),
      ]);
      const e = await submit(h, prog, ['--priority', '5']);
      // two more at once behind b: v is whichever the node queued first, w the other
      const [x, y] = await Promise.all([submit(h, prog), submit(h, prog)]);
      const [v, w] = (await queueFile(h, x))?.position === 4 ? [x, y] : [y, x];
      expect([(await queueFile(h, v))?.position, (await queueFile(h, w))?.position]).toEqual([4, 5]);
      const sup = (await status(h, v)).supervisorPid as number;
      process.kill(sup, 'SIGKILL');
      // the waiters behind it move up (a dead waiter's ticket is skipped and removed)
      expect(await until(async () => (await queueFile(h, w))?.position === 4)).toBe(true);
      expect(await until(async () => !(await readdir(join(s.lockDir, 'queue'))).some((n) => n.includes(v)))).toBe(true);
      const r = await gpuq(h, ['cancel', w]);
      expect(r.code, r.stderr).toBe(0);
      // cancel returns once w's ticket is gone: c, e, b and d are left, in that order
      const left = (await readdir(join(s.lockDir, 'queue'))).filter((n) => n.startsWith('q-')).sort();
      expect(left.map((n) => [c, e, b, d].findIndex((id) => n.includes(id)))).toEqual([0, 1, 2, 3]);
      const shown = await gpuqJson<Job>(h, ['show', b]);
      expect(shown.priority).toBe(0);
      expect(shown.queue?.position).toBe(3);
      expect(shown.queue?.reason).toBe('behind 2 jobs on local (2 of higher priority)');
      const jobs = await gpuqJson<Job[]>(h, ['list']);
      expect(jobs.find((j) => j.id === v)?.verdict?.class).toBe('lost');
      const jw = jobs.find((j) => j.id === w);
      expect(jw?.verdict?.class).toBe('cancelled');
      expect(jw?.verdict?.summary).toMatch(/never ran/);
      const qc = jobs.find((j) => j.id === c);
      expect(qc?.state).toBe('queued');
      expect(qc?.queue?.position).toBe(1);
      expect(qc?.queue?.reason).toMatch(new RegExp(`GPU 0 is held by job ${a}`));
      expect(qc?.queue?.estimatedStart).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(jobs.find((j) => j.id === a)?.state).toBe('running');
      await gate.open();
      expect((await gpuq(h, ['wait', a, b, c, d, e])).code).toBe(0);
      const starts = await Promise.all(
        [b, c, d, e].map(async (id) => ({ id, t: (await times(h, id)).start as number })),
      );
      expect(starts.sort((p, q) => p.t - q.t).map((p) => p.id)).toEqual([c, e, b, d]);
      expect((await times(h, v)).start).toBeNull();
      expect((await times(h, w)).start).toBeNull();
    } finally {
      await gate.cleanup();
      await s.cleanup();
    }
  });

  it('waits while a process outside gpuq holds the GPU, naming its pid, user and memory', async () => {
    const bin = await mkdtemp(join(tmpdir(), 'gpuq-smi-q-'));
    const pidFile = join(bin, 'foreign.pid');
    const uuid = 'GPU-aaaaaaaa-2222-3333-4444-555555555555';
    await writeFile(
      join(bin, 'nvidia-smi'),
      [
        '#!/bin/sh',
        'case "$1" in',
        `  --query-gpu=*) echo "0, ${uuid}, 3000, 10" ;;`,
        `  --query-compute-apps=*) p=$(cat ${pidFile} 2>/dev/null); [ -n "$p" ] && [ -d /proc/$p ] && echo "$p, 2048, ${uuid}" ;;`,
        'esac',
        'exit 0',
        '',
      ].join('\n'),
    );
    await chmod(join(bin, 'nvidia-smi'), 0o755);
    const foreign = spawn('sleep', ['120'], { stdio: 'ignore' });
    await writeFile(pidFile, String(foreign.pid));
    const s = await setup(1, 1, { foreignGpuMemory: '1g' }, { PATH: `${bin}:${process.env.PATH}` });
    try {
      const h = s.homes[0] as Home;
      h.env.PATH = `${bin}:${h.env.PATH}`;
      const b = await submit(h, await timedProgram(s, null));
      expect((await status(h, b)).state).toBe('queued');
      const jobs = await gpuqJson<Job[]>(h, ['list']);
      const reason = jobs.find((j) => j.id === b)?.queue?.reason ?? '';
      expect(reason).toMatch(new RegExp(`GPU 0 is used outside gpuq by pid ${foreign.pid} \\(root, 2\\.0 GiB\\)`));
      foreign.kill('SIGKILL');
      expect((await gpuq(h, ['wait', b])).code).toBe(0);
      expect((await times(h, b)).start).not.toBeNull();
    } finally {
      foreign.kill('SIGKILL');
      await s.cleanup();
      await rm(bin, { recursive: true, force: true });
    }
  });

  it('refuses bad priorities and more GPUs than the node has (exit 2), an unusable lock folder (exit 3)', async () => {
    const s = await setup(1, 1);
    const base = await mkdtemp(join(tmpdir(), 'gpuq-q-bad-'));
    await writeFile(join(base, 'file'), '');
    const bad = await setup(1, 1, { lockDir: join(base, 'file', 'locks') });
    try {
      const h = s.homes[0] as Home;
      const prog = await timedProgram(s, null);
      const bads = ['1.5', 'high', '5000', '-1001'];
      const [r2, r3, ...rs] = await Promise.all([
        gpuq(h, ['submit', prog, '--gpus', '2']),
        gpuq(bad.homes[0] as Home, ['submit', prog, '--gpus', '1']),
        ...bads.map((p) => gpuq(h, ['submit', prog, '--gpus', '1', '--priority', p])),
      ]);
      rs.forEach((r, i) => {
        expect(r.code, bads[i]).toBe(2);
        expect(r.stderr).toMatch(/--priority/);
      });
      expect(r2.code).toBe(2);
      expect(r2.stderr).toMatch(/no node has 2 GPU/);
      expect(r3.code, r3.stderr).toBe(3);
      expect(r3.stderr).toContain(`node local: the GPU lock folder ${join(base, 'file', 'locks')}`);
      const jobs = await gpuqJson<Job[]>(bad.homes[0] as Home, ['list']);
      expect(jobs.map((j) => j.state)).toEqual(['done']);
    } finally {
      await s.cleanup();
      await bad.cleanup();
      await rm(base, { recursive: true, force: true });
    }
  });
});
