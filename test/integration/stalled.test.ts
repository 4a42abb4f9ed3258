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
 * The node's stall margin (README, `nodes.NAME.stallMargin`) is cut to 3 s, so the client acts
 * 14 s after the start instead of 41 s; the default margin is checked in test/unit/reads.test.ts.
 */
const STALL_MARGIN_S = 3;
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

const STOPPER = `import json, os, signal, time
st = json.load(open('../status.json'))
os.kill(st['supervisorPid'], signal.SIGSTOP)
open('stopped', 'w').close()
time.sleep(3600)
`;

describe.concurrent.each(MODES)('$label', (mode) => {
  it('a stopped supervisor: submit --wait ends the job itself past the deadline, timeout (supervisor_stalled), exit 11', async () => {
    mode.needs().check();
    const h = await mode.home();
    const prog = await writeProgram('stop_supervisor.py', STOPPER);
    const start = Date.now();
    const run = startGpuq(h, ['submit', prog, '--timeout', '10s', '--grace', '1s', '--wait', '--json']);
    // 10 s leaves a slow interpreter time to stop the supervisor before the timeout could fire.
    // Bound: 11 s of limits + the margin + one node-side wait and the kill, on a loaded machine.
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
    expect(Date.now() - start).toBeGreaterThanOrEqual((11 + STALL_MARGIN_S) * 1000);
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
      const prog = await writeProgram('stop_supervisor.py', STOPPER);
      const sub = async (p: string, t: string) => {
        const r = await gpuq(h, ['submit', p, '--gpus', '1', '--timeout', t, '--grace', '1s', '-q']);
        expect(r.code, r.stderr).toBe(0);
        return r.stdout.trim();
      };
      const a = await sub(holder, '2m');
      const b = await sub(prog, '10s');
      expect((await gpuqJson<Job>(h, ['show', b])).state).toBe('queued');
      // The wait starts while b is queued; then a ends, b starts and stops its own supervisor.
      const run = startGpuq(h, ['wait', b, '--json']);
      const kill = setTimeout(() => run.killAll('SIGKILL'), 120_000);
      await gate.open();
      const r = await run.done;
      clearTimeout(kill);
      expect(r.signal, 'wait hung: the stall check never began').toBeNull();
      const [job] = JSON.parse(r.stdout) as Job[];
      expect(job?.verdict?.cause, `${JSON.stringify(job?.verdict)} | ${r.stderr}`).toBe('supervisor_stalled');
      expect(r.code).toBe(11);
      expect((await gpuq(h, ['wait', a])).code).toBe(0);
    } finally {
      await gate.cleanup();
      await rm(lockDir, { recursive: true, force: true });
    }
  }, 150_000);
});
