/**
 * services/cancel over in-memory nodes: a running job ends cancelled, a job not started yet is
 * cancelled before start, a finished one is left as it is.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { cancelJob } from '../../src/services/cancel.js';
import { submit } from '../../src/services/submit.js';
import { MemoryNode, memoryContext } from '../helpers/memory-transport.js';

describe('cancel over in-memory nodes', () => {
  it('cancels a running job: the supervisor is signalled and the verdict is cancelled', async () => {
    const n1 = new MemoryNode('n1');
    const { ctx, dir } = memoryContext([n1]);
    writeFileSync(join(dir, 'p.py'), 'print(1)\n');
    const job = await submit(
      ctx,
      {
        file: 'p.py',
        node: 'n1',
        name: null,
        competition: null,
        limits: {},
        isolation: null,
        image: null,
        env: {},
        args: [],
      },
      dir,
    );
    const { job: done, cancelled } = await cancelJob(ctx, job.id);
    expect(cancelled).toBe(true);
    expect(n1.job().cancelRequested).toBe(true);
    expect(done.state).toBe('done');
    expect(done.verdict).toMatchObject({ class: 'cancelled', exitCode: 143, signal: 'SIGTERM' });
    expect(done.history.map((h) => [h.state, h.note])).toEqual([
      ['pending', null],
      ['running', 'started on n1, pid 1001'],
      ['running', 'cancel requested'],
      ['done', expect.any(String) as unknown as string],
    ]);
    expect(n1.ran).toEqual(['start the supervisor', 'cancel the job', 'wait for the job to end']);
    // again: already over, nothing more on the node
    const again = await cancelJob(ctx, job.id);
    expect(again).toEqual({ job: done, cancelled: false });
    expect(n1.ran).toHaveLength(3);
  });

  it('cancels a job that has not reached its node yet without touching any node', async () => {
    const n1 = new MemoryNode('n1');
    const { ctx } = memoryContext([n1]);
    const at = new Date().toISOString();
    const pending: Job = {
      id: 'abcdefgh',
      name: 'p.py',
      file: '/tmp/p.py',
      node: 'n1',
      gpus: [],
      competition: null,
      state: 'pending',
      isolation: 'ulimit',
      image: null,
      limits: { ...ctx.config.defaults, gpus: 0 },
      env: {},
      args: [],
      createdAt: at,
      startedAt: null,
      endedAt: null,
      history: [{ state: 'pending', at, note: null }],
      remote: null,
      verdict: null,
    };
    await ctx.ledger.update((jobs) => ({ jobs: [...jobs, pending], result: undefined }));
    const { job, cancelled } = await cancelJob(ctx, 'abcdefgh');
    expect(cancelled).toBe(true);
    expect(job.state).toBe('done');
    expect(job.verdict).toEqual({
      class: 'cancelled',
      cause: null,
      exitCode: null,
      signal: null,
      timedOut: false,
      summary: 'Cancelled before it started.',
      evidence: ['gpuq cancel before the job reached its node'],
      hints: [],
    });
    expect(n1.connects).toBe(0);
  });
});
