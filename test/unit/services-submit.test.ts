/**
 * services/submit over in-memory nodes: fail-over, adopt after a dropped launch, a node-side
 * fault, and the GPU choice under concurrent submits. Exact ledger states and verdicts.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NodeFaultError, NodeUnreachableError } from '../../src/core/errors.js';
import type { Job } from '../../src/core/types.js';
import { type SubmitOptions, submit, submitAndWait } from '../../src/services/submit.js';
import { MemoryNode, memoryContext } from '../helpers/memory-transport.js';

function options(dir: string, over: Partial<SubmitOptions> = {}): SubmitOptions {
  writeFileSync(join(dir, 'train.py'), 'print("hi")\n');
  return {
    file: 'train.py',
    node: null,
    name: null,
    competition: null,
    limits: {},
    isolation: null,
    image: null,
    env: {},
    args: [],
    ...over,
  };
}

const states = (j: Job) => j.history.map((h) => [h.state, h.note]);

describe('submit over in-memory nodes', () => {
  it('fails over to the next node when the first does not answer', async () => {
    const n1 = new MemoryNode('n1');
    const n2 = new MemoryNode('n2');
    n1.down = true;
    const { ctx, out, dir } = memoryContext([n1, n2]);
    const job = await submit(ctx, options(dir), dir);
    expect(job.node).toBe('n2');
    expect(job.state).toBe('running');
    expect(job.remote).toEqual({
      dir: `/mem/n2/jobs/${job.id}`,
      supervisorPid: 1000,
      pid: 1001,
      bootId: 'boot-n2',
      boundary: 'none', // the in-memory supervisor's status.json names no boundary
    });
    expect(states(job)).toEqual([
      ['pending', null],
      ['running', 'started on n2, pid 1001'],
    ]);
    expect(n1.jobs.size).toBe(0);
    expect([...n2.jobs.keys()]).toEqual([`/mem/n2/jobs/${job.id}`]);
    expect(out.infos).toEqual(['node n1 is unreachable (connection refused on n1:22); trying the other nodes.']);
    expect(await ctx.ledger.readLive()).toEqual([job]);
  });

  it('tries the next node when a launch dropped before it started anything', async () => {
    const n1 = new MemoryNode('n1');
    const n2 = new MemoryNode('n2');
    n1.dropOnce('start the supervisor', 'before');
    const { ctx, out, dir } = memoryContext([n1, n2]);
    const job = await submit(ctx, options(dir), dir);
    expect(job.node).toBe('n2');
    expect(n1.jobs.size).toBe(0);
    expect(n1.ran).toEqual(['read the node status', 'check whether the job started']);
    expect(n2.jobs.size).toBe(1);
    expect(out.infos).toEqual([
      'node n1: connection lost during "start the supervisor" (dropped before the ' +
        'script ran); the job did not start there; trying node n2.',
    ]);
  });

  it(
    'adopts a job whose launch ran but whose answer was lost (the link dropped ' + 'before the pid came back)',
    async () => {
      const n1 = new MemoryNode('n1');
      n1.dropOnce('start the supervisor', 'after');
      const { ctx, dir } = memoryContext([n1]);
      const job = await submit(ctx, options(dir), dir);
      // started once, found on a second connection, not started again
      expect(n1.ran).toEqual(['start the supervisor', 'check whether the job started']);
      expect(n1.connects).toBe(2);
      expect(n1.jobs.size).toBe(1);
      expect(job).toMatchObject({
        node: 'n1',
        state: 'running',
        remote: { dir: `/mem/n1/jobs/${job.id}`, supervisorPid: 1000, pid: 1001, bootId: 'boot-n1' },
        verdict: null,
      });
      expect(states(job)).toEqual([
        ['pending', null],
        ['running', 'started on n1 (confirmed after the connection dropped), pid 1001'],
      ]);
    },
  );

  it('records an unconfirmed start and says so (exit 3) when the node cannot be asked after the drop', async () => {
    const n1 = new MemoryNode('n1');
    n1.dropOnce('start the supervisor', 'after', () => {
      n1.down = true;
    });
    const { ctx, dir } = memoryContext([n1]);
    const err = await submit(ctx, options(dir), dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeUnreachableError);
    expect((err as NodeUnreachableError).exitCode).toBe(3);
    expect((err as Error).message).toMatch(/the connection dropped while starting job \w+ .*it may be running there/);
    const [job] = await ctx.ledger.readLive();
    expect(job).toMatchObject({
      state: 'running',
      remote: { dir: `/mem/n1/jobs/${job?.id}`, supervisorPid: null, pid: null, bootId: null },
      verdict: null,
    });
    expect(job?.history.at(-1)?.note).toMatch(/^start unconfirmed: connection lost during "start the supervisor"/);
  });

  it(
    'a failing script on a reached node is a node fault (exit 1), not unreachable, ' + 'and no other node is tried',
    async () => {
      const n1 = new MemoryNode('n1');
      const n2 = new MemoryNode('n2');
      n1.faults.set('start the supervisor', {
        code: 3,
        stderr: 'gpuq needs flock and setsid (util-linux) on this node\n',
      });
      const { ctx, dir } = memoryContext([n1, n2]);
      const err = await submit(ctx, options(dir), dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NodeFaultError);
      expect(err).not.toBeInstanceOf(NodeUnreachableError);
      expect((err as NodeFaultError).exitCode).toBe(1);
      expect((err as Error).message).toBe(
        'on node n1, could not start the job: gpuq needs flock and setsid (util-linux) on this node',
      );
      expect(n2.jobs.size).toBe(0);
      const [job] = await ctx.ledger.readLive();
      expect(job?.state).toBe('done');
      expect(job?.verdict).toEqual({
        class: 'lost',
        cause: 'not_started',
        exitCode: null,
        signal: null,
        timedOut: false,
        summary:
          'Never started: on node n1, could not start the job: gpuq needs flock and setsid (util-linux) on this node',
        evidence: ['on node n1, could not start the job: gpuq needs flock and setsid (util-linux) on this node'],
        hints: ['Check the node with `gpuq nodes`, then submit again.'],
      });
    },
  );

  it('records never started (lost, not_started) and exits 3 when no node answers', async () => {
    const n1 = new MemoryNode('n1');
    n1.down = true;
    const { ctx, dir } = memoryContext([n1]);
    const err = await submit(ctx, options(dir, { node: 'n1' }), dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeUnreachableError);
    const [job] = await ctx.ledger.readLive();
    expect(job?.verdict).toMatchObject({
      class: 'lost',
      cause: 'not_started',
      summary: 'Never started: node n1 is unreachable: connection refused on n1:22',
    });
    expect(job?.history.map((h) => h.state)).toEqual(['pending', 'running', 'done']);
  });

  // The node, not the client, picks GPUs (its leases: test/integration/gpu-queue and gpu-race):
  // the ledger records what the supervisor's status.json says, and this node's says none.
  it('leaves the GPU choice to the node: the ledger records no GPU the node did not report', async () => {
    const n1 = new MemoryNode('n1');
    const { ctx, dir } = memoryContext([[n1, { gpus: [0, 1, 2, 3] }]]);
    const jobs = await Promise.all([0, 1, 2, 3].map(() => submit(ctx, options(dir, { limits: { gpus: 1 } }), dir)));
    expect(jobs.flatMap((j) => j.gpus)).toEqual([]);
    const stored = await ctx.ledger.readLive();
    expect(stored.flatMap((j) => j.gpus)).toEqual([]);
    expect(stored.map((j) => j.state)).toEqual(['running', 'running', 'running', 'running']);
  });

  it('submit --wait reuses the connection it started the job on, and records the verdict', async () => {
    const n1 = new MemoryNode('n1');
    const { ctx, dir } = memoryContext([n1]);
    const seen: string[] = [];
    const done = submitAndWait(ctx, options(dir, { node: 'n1' }), dir, (j) => seen.push(j.state));
    await n1.whenWaiting();
    n1.finish(n1.job().dir, 0);
    const job = await done;
    expect(seen).toEqual(['running']);
    expect(job.verdict).toMatchObject({ class: 'succeeded', exitCode: 0 });
    expect(n1.connects).toBe(1);
    expect(n1.ran).toEqual(['start the supervisor', 'wait for the job to end']);
  });
});
