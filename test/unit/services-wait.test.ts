/**
 * services/wait over in-memory nodes: the verdict recorded when the node says the job ended,
 * a dropped link waited out, one connection per node for several jobs.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import type { AppContext } from '../../src/services/context.js';
import { submit } from '../../src/services/submit.js';
import { waitJob, waitJobs } from '../../src/services/wait.js';
import { MemoryNode, memoryContext } from '../helpers/memory-transport.js';

async function started(ctx: AppContext, dir: string, node: string): Promise<Job> {
  writeFileSync(join(dir, 'train.py'), 'print("hi")\n');
  const opts = { file: 'train.py', name: null, competition: null, limits: {}, isolation: null, image: null };
  return submit(ctx, { ...opts, node, env: {}, args: [] }, dir);
}

describe('wait over in-memory nodes', () => {
  it('records the verdict the node reports once the job ends (exit 1: failed)', async () => {
    const n1 = new MemoryNode('n1');
    const { ctx, dir } = memoryContext([n1]);
    const job = await started(ctx, dir, 'n1');
    const done = waitJob(ctx, job);
    await n1.whenWaiting();
    n1.finish(job.remote!.dir, 1);
    const j = await done;
    expect(j.state).toBe('done');
    expect(j.verdict).toMatchObject({ class: 'failed', exitCode: 1, signal: null, timedOut: false });
    expect(j.history.map((h) => h.state)).toEqual(['pending', 'running', 'done']);
    expect((await ctx.ledger.readLive())[0]).toEqual(j);
  });

  it('waits out a dropped link and still records the verdict (exit 0: succeeded)', async () => {
    const n1 = new MemoryNode('n1');
    const { ctx, out, dir } = memoryContext([n1]);
    const job = await started(ctx, dir, 'n1');
    const connectsBefore = n1.connects;
    const done = waitJob(ctx, job);
    await n1.whenWaiting();
    n1.dropAll('network down');
    await n1.whenWaiting();
    n1.finish(job.remote!.dir, 0);
    const j = await done;
    expect(j.verdict).toMatchObject({ class: 'succeeded', exitCode: 0 });
    expect(n1.connects - connectsBefore).toBe(2);
    expect(out.infos).toContain(
      'node n1: connection lost during "wait for the job to end" (network down); reconnecting in 0.5 s',
    );
    expect(out.infos).toContain('node n1: reconnected');
  });

  it('waits for several jobs of one node over one connection', async () => {
    const n1 = new MemoryNode('n1');
    const { ctx, dir } = memoryContext([n1]);
    const a = await started(ctx, dir, 'n1');
    const b = await started(ctx, dir, 'n1');
    const connectsBefore = n1.connects;
    const seen: string[] = [];
    const done = waitJobs(ctx, [a.id, b.id], (j) => seen.push(j.id));
    await n1.whenWaiting(2);
    n1.finish(b.remote!.dir, 137);
    n1.finish(a.remote!.dir, 0);
    const [ja, jb] = await done;
    expect(ja?.verdict?.class).toBe('succeeded');
    expect(jb?.verdict).toMatchObject({ class: 'signaled', exitCode: 137, signal: 'SIGKILL' });
    expect(n1.connects - connectsBefore).toBe(1);
    expect(seen.sort()).toEqual([a.id, b.id].sort());
  });
});
