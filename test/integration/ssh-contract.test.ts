/**
 * The public contract (CONTRACT.md) over a real SSH node (a private sshd, one per file): `cancel`
 * with several ids, on a finished and on an unknown job; `show`'s bound on a hung node (its sshd
 * frozen with SIGSTOP): it answers within SHOW_NODE_TIMEOUT_MS with the ledger's view and a note.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { SHOW_NODE_TIMEOUT_MS } from '../../src/services/list.js';
import { gpuq, gpuqJson, type Home, jobProcesses, makeGate, makeHome, writeProgram } from '../helpers/cli.js';
import { type Sshd, startSshd } from '../helpers/sshd.js';

let node: Sshd;
beforeAll(async () => {
  node = await startSshd({ alias: 'contract-n' });
});
afterAll(async () => {
  node?.thaw();
  await node?.cleanup();
});

/** A home whose one node is the sshd (connect timeout as given), its host key known. */
async function home(connectTimeout = '10s'): Promise<Home> {
  const h = await makeHome({ nodes: { n: node.configEntry({ connectTimeout }) } });
  await writeFile(join(h.dir, 'known_hosts'), `${node.knownHostsLine('right')}\n`);
  return h;
}

/** Submits a program that holds on a gate (never opened: 60 s at most) and prints "holding". */
async function submitHeld(h: Home): Promise<string> {
  const gate = await makeGate();
  const prog = await writeProgram('held.py', `${gate.pyDef}print("holding", flush=True)\ngate_wait()\n`);
  const r = await gpuq(h, ['submit', prog, '-q']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

describe('cancel over SSH', () => {
  it('cancels several running jobs at once: each cancelled, their processes gone, wait exits 16', async () => {
    const h = await home();
    const [a, b] = await Promise.all([submitHeld(h), submitHeld(h)]);
    const listed = await gpuqJson<Job[]>(h, ['list']);
    expect(listed.filter((j) => j.id === a || j.id === b).map((j) => j.state)).toEqual(['running', 'running']);
    // An unknown id among them: exit 4, and the known job is left running.
    const mixed = await gpuq(h, ['cancel', a, 'qqqqqqqq']);
    expect(mixed.code, mixed.stderr).toBe(4);
    expect(mixed.stderr).toMatch(/no job matches "qqqqqqqq"/);
    expect((await gpuqJson<Job>(h, ['show', a])).state).toBe('running');
    const c = await gpuq(h, ['cancel', a, b]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toContain(`${a} cancelled`);
    expect(c.stdout).toContain(`${b} cancelled`);
    const w = await gpuq(h, ['wait', a, b, '--json']);
    expect(w.code, w.stderr).toBe(16);
    for (const job of JSON.parse(w.stdout) as Job[]) {
      expect(job.verdict?.class, job.verdict?.summary).toBe('cancelled');
      expect(job.verdict?.evidence.join('\n')).toMatch(/gpuq cancel sent SIGTERM/);
      expect(jobProcesses(job.id), `processes of ${job.id} outlived its verdict`).toEqual([]);
    }

    // On a finished job (these two) cancel changes nothing and says it had ended; an unknown id
    // exits 4, alone or among finished ones.
    const before = await gpuqJson<Job>(h, ['show', a]);
    const [again, unknown, mixedDone] = await Promise.all([
      gpuq(h, ['cancel', a]),
      gpuq(h, ['cancel', 'qqqqqqqq']),
      gpuq(h, ['cancel', b, 'qqqqqqqq']),
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`${a} had already ended: .*cancelled`));
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toMatch(/no job matches "qqqqqqqq"/);
    expect(unknown.stdout).toBe('');
    expect(mixedDone.code).toBe(4);
    expect(await gpuqJson<Job>(h, ['show', a])).toEqual(before);
  });
});

describe("show's bound on a hung node", () => {
  it('answers within its bound with the ledger view and a note while the sshd is frozen (SIGSTOP)', async () => {
    // A connect timeout far above show's own bound: the bound is show's, not the connection's.
    const h = await home('60s');
    const id = await submitHeld(h);
    const before = await gpuqJson<Job>(h, ['show', id]);
    expect(before.state).toBe('running');
    node.freeze();
    try {
      for (const json of [false, true]) {
        const started = Date.now();
        const r = await gpuq(h, ['show', id, ...(json ? ['--json'] : [])]);
        const took = Date.now() - started;
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toMatch(/node n is unreachable \(.+\); showing the last known state/);
        // The bound plus gpuq's own start, generous for a loaded machine; far below the 60 s connect timeout.
        expect(took).toBeGreaterThanOrEqual(SHOW_NODE_TIMEOUT_MS - 500);
        expect(took).toBeLessThan(SHOW_NODE_TIMEOUT_MS + 15_000);
        if (json) {
          const shown = JSON.parse(r.stdout) as Job & { peaks: unknown };
          expect(shown).toMatchObject({ id, state: 'running', node: 'n' });
          expect(shown.peaks).toBe(null);
        } else {
          expect(r.stdout).toContain(id);
          expect(r.stdout).toMatch(/running/);
        }
      }
    } finally {
      node.thaw();
    }
    // Once the node answers again, the job is there and can be cancelled.
    const c = await gpuq(h, ['cancel', id]);
    expect(c.code, c.stderr).toBe(0);
    expect((await gpuq(h, ['wait', id])).code).toBe(16);
  });
});
