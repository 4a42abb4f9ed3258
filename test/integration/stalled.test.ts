import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { need, type Need } from '../helpers/capability.js';
import {
  gpuq,
  gpuqJson,
  type Home,
  makeGate,
  makeHome,
  startGpuq,
  until,
  NO_BOUNDARY_CONFIG,
  writeSharedProgram as writeProgram,
} from '../helpers/cli.js';
import { ensureTestUser, jobProcesses, liveProcess, TEST_USER } from '../helpers/hostile.js';

interface Mode {
  label: string;
  needs: () => Need;
  home: () => Promise<Home>;
}

/**
 * The node's stall margin (README, `nodes.NAME.stallMargin`) is cut to 1 s, so the client acts
 * 5 s after the start (timeout 3 s + grace 1 s + the margin) instead of 34 s; the default margin is
 * checked in test/unit/reads.test.ts. The supervisor here is stopped, never slow, so a short margin
 * cannot make a healthy one look stalled.
 */
const STALL_MARGIN_S = 1;
/** The job's --timeout and --grace (seconds): the deadline is TIMEOUT_S + GRACE_S + the margin. */
const TIMEOUT_S = 3;
const GRACE_S = 1;
const CONFIG = { nodes: { local: { ...NO_BOUNDARY_CONFIG.nodes.local, stallMargin: `${STALL_MARGIN_S}s` } } };

// The two modes run side by side (concurrent tests), so each cleans its home after the file.
const homes: Home[] = [];
afterAll(async () => {
  await Promise.all(homes.splice(0).map((h) => h.cleanup()));
});
async function keep(h: Promise<Home>): Promise<Home> {
  const home = await h;
  homes.push(home);
  return home;
}

const MODES: Mode[] = [
  {
    label: 'as the test runner',
    needs: () => need(true, 'nothing'),
    home: () => keep(makeHome(CONFIG, {}, { autoCleanup: false })),
  },
  {
    label: `as ${TEST_USER}`,
    needs: () => need(ensureTestUser(), `root, to create the user ${TEST_USER} and run gpuq as it`),
    home: () => keep(makeHome(CONFIG, {}, { runAs: TEST_USER, autoCleanup: false })),
  },
];

/**
 * Stops its own supervisor (SIGSTOP to the pid status.json names) and sleeps. A bash program: it
 * starts in milliseconds even on a loaded machine, so it stops the supervisor well before the 3 s
 * timeout could fire (a Python one needed a 10 s timeout for a slow interpreter start).
 */
const STOPPER = `pid=$(sed -n 's/.*"supervisorPid": *\\([0-9][0-9]*\\).*/\\1/p' ../status.json)
kill -STOP "$pid"
touch stopped
exec sleep 3600
`;

describe.concurrent.each(MODES)('$label', (mode) => {
  it('a stopped supervisor: submit --wait ends the job itself past the deadline, timeout (supervisor_stalled), exit 11', async () => {
    mode.needs().check();
    const h = await mode.home();
    const prog = await writeProgram('stop_supervisor.sh', STOPPER);
    const start = Date.now();
    const run = startGpuq(h, [
      'submit',
      prog,
      '--timeout',
      `${TIMEOUT_S}s`,
      '--grace',
      `${GRACE_S}s`,
      '--wait',
      '--json',
    ]);
    // Bound: the limits + the margin + one node-side wait and the kill, on a loaded machine.
    const kill = setTimeout(() => run.child.kill('SIGKILL'), 120_000);
    const r = await run.done;
    clearTimeout(kill);
    expect(r.signal, 'submit --wait hung').toBeNull();
    const job = JSON.parse(r.stdout) as Job;
    const where = `${JSON.stringify(job.verdict)} | ${r.stderr}`;
    expect(job.verdict?.class, where).toBe('timeout');
    expect(job.verdict?.cause, where).toBe('supervisor_stalled');
    expect(r.code, where).toBe(11);
    // Not before the deadline (timeout + grace + the node's margin).
    expect(Date.now() - start).toBeGreaterThanOrEqual((TIMEOUT_S + GRACE_S + STALL_MARGIN_S) * 1000);
    expect(job.verdict?.evidence.join(' ')).toMatch(/supervisor \(pid \d+, state T: stopped\)/);
    const supervisor = job.remote?.supervisorPid as number;
    expect(await until(() => !liveProcess(supervisor) && jobProcesses(job.id).length === 0, 10_000)).toBe(true);
  }, 150_000);
});

describe('a wait begun while the job is queued', () => {
  it('applies the stall check once the job starts: wait ends a supervisor stopped after the queue', async () => {
    const lockDir = await mkdtemp(join(tmpdir(), 'gpuq-stall-locks-'));
    const h = await keep(
      makeHome({ nodes: { local: { ...CONFIG.nodes.local, gpus: [0], lockDir } } }, {}, { autoCleanup: false }),
    );
    const gate = await makeGate({ autoCleanup: false });
    try {
      const holder = await writeProgram('hold.py', `${gate.pyDef}gate_wait()\n`);
      const prog = await writeProgram('stop_supervisor.sh', STOPPER);
      const sub = async (p: string, t: string) => {
        const r = await gpuq(h, ['submit', p, '--gpus', '1', '--timeout', t, '--grace', `${GRACE_S}s`, '-q']);
        expect(r.code, r.stderr).toBe(0);
        return r.stdout.trim();
      };
      const a = await sub(holder, '2m');
      const b = await sub(prog, `${TIMEOUT_S}s`);
      expect((await gpuqJson<Job>(h, ['show', b])).state).toBe('queued');
      // The wait (of both jobs: one gpuq run) starts while b is queued; then a ends, b starts and
      // stops its own supervisor.
      const run = startGpuq(h, ['wait', a, b, '--json']);
      const kill = setTimeout(() => run.killAll('SIGKILL'), 120_000);
      await gate.open();
      const r = await run.done;
      clearTimeout(kill);
      expect(r.signal, 'wait hung: the stall check never began').toBeNull();
      const jobs = JSON.parse(r.stdout) as Job[];
      const job = jobs.find((j) => j.id === b);
      expect(job?.verdict?.cause, `${JSON.stringify(job?.verdict)} | ${r.stderr}`).toBe('supervisor_stalled');
      expect(jobs.find((j) => j.id === a)?.verdict?.class).toBe('succeeded');
      expect(r.code).toBe(11); // the worse of 0 and 11
    } finally {
      await gate.cleanup();
      await rm(lockDir, { recursive: true, force: true });
    }
  }, 150_000);
});
