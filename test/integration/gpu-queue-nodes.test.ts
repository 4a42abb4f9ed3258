/**
 * Choosing a node when every one is busy (issue 12, item 5), through the built CLI: two SSH nodes
 * on one private sshd, each with its own workdir and its own lock folder (so its own "GPU 0").
 * Each GPU is held by a gated job: node a's for up to 10 minutes, node b's for up to 2. A job
 * without --node goes where it is expected to start first (b, though a comes first in the
 * config); --node a pins it to a; more GPUs than any node has is refused (exit 2, nothing
 * recorded). Then the gate opens and the queued jobs run on their nodes.
 */
import { randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { type Gate, gpuq, gpuqJson, type Home, makeGate, makeHome, writeProgram } from '../helpers/cli.js';
import { type Sshd, startSshd } from '../helpers/sshd.js';

let sshd: Sshd;
let home: Home;
let gate: Gate;
const tag = randomUUID().slice(0, 8);
const lockDirs = { a: `/tmp/gpuq-locks-nodes-${tag}-a`, b: `/tmp/gpuq-locks-nodes-${tag}-b` };

beforeAll(async () => {
  sshd = await startSshd({ alias: 'two-nodes' });
  const entry = (n: 'a' | 'b') =>
    sshd.configEntry({ gpus: [0], lockDir: lockDirs[n], workdir: `~/gpuq-${sshd.port}-${n}` });
  home = await makeHome(
    { nodes: { a: entry('a'), b: entry('b') } },
    { GPUQ_SSH_CONFIG: sshd.sshConfigPath },
    { autoCleanup: false },
  );
  await writeFile(join(home.dir, 'known_hosts'), `${sshd.knownHostsLine('right')}\n`);
  gate = await makeGate({ autoCleanup: false });
});
afterAll(async () => {
  await gate?.cleanup();
  await home?.cleanup();
  await sshd?.cleanup();
  await Promise.all(Object.values(lockDirs).map((d) => rm(d, { recursive: true, force: true })));
});

describe('choosing a node when all are busy', () => {
  it('takes the node where the job starts first; --node pins; too many GPUs is exit 2', async () => {
    const held = await writeProgram('held.py', `${gate.pyDef}gate_wait()\nprint("held")\n`);
    const quick = await writeProgram('quick.py', 'print("ran")\n');
    const submit = async (args: string[]) => {
      const r = await gpuq(home, ['submit', ...args, '--json']);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Job;
    };
    // The holders: a's GPU for up to 10 minutes, b's for up to 2.
    const [ha, hb] = await Promise.all([
      submit([held, '--node', 'a', '--gpus', '1', '--timeout', '10m']),
      submit([held, '--node', 'b', '--gpus', '1', '--timeout', '2m']),
    ]);
    expect([ha.node, ha.state, hb.node, hb.state]).toEqual(['a', 'running', 'b', 'running']);

    const [free, pinned, tooMany] = await Promise.all([
      submit([quick, '--gpus', '1', '--timeout', '1m']),
      submit([quick, '--node', 'a', '--gpus', '1', '--timeout', '1m']),
      gpuq(home, ['submit', quick, '--gpus', '2']),
    ]);
    // b frees its GPU first (2 minutes at most against 10), though a is first in the config.
    expect([free.node, free.state]).toEqual(['b', 'queued']);
    expect([pinned.node, pinned.state]).toEqual(['a', 'queued']);
    expect(tooMany.code, tooMany.stderr).toBe(2);
    expect(tooMany.stderr).toMatch(/no node has 2 GPU\(s\)/);
    expect(await gpuqJson<Job[]>(home, ['list', '--all'])).toHaveLength(4);

    // The holders end; each queued job runs on the node it was sent to.
    await gate.open();
    const w = await gpuq(home, ['wait', ha.id, hb.id, free.id, pinned.id]);
    expect(w.code, w.stderr).toBe(0);
    const jobs = await gpuqJson<Job[]>(home, ['list', '--all']);
    const byId = new Map(jobs.map((j) => [j.id, j]));
    expect(byId.get(free.id)).toMatchObject({ node: 'b', gpus: [0], state: 'done' });
    expect(byId.get(pinned.id)).toMatchObject({ node: 'a', gpus: [0], state: 'done' });
  });
});
