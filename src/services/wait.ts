/**
 * `gpuq wait` and `submit --wait`: block until jobs end, record their verdicts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Job } from '../core/types.js';
import { waitForEnd } from '../node/protocol.js';
import type { AppContext } from './context.js';
import { findJob, isOver, nodeOf, recordVerdict, verdictOf } from './jobs.js';
import { withReconnect } from './reconnect.js';

/** Waits for one job to end and returns it with its verdict recorded. */
export async function waitJob(ctx: AppContext, job: Job, signal?: AbortSignal): Promise<Job> {
  let cur = job;
  // A job still being submitted by another process has no folder yet: give it a minute.
  for (let i = 0; cur.state !== 'done' && cur.remote === null && i < 120; i++) {
    await sleep(500);
    cur = await findJob(ctx, cur.id);
  }
  if (cur.state === 'done') return cur;
  if (cur.remote === null) {
    return recordVerdict(ctx, cur.id, {
      class: 'lost',
      cause: 'not_started',
      exitCode: null,
      signal: null,
      timedOut: false,
      summary: 'The job never reached its node: its submit stopped before starting it.',
      evidence: ['no job folder was recorded for it'],
      hints: ['Submit the file again.'],
    });
  }
  const remote = cur.remote;
  const node = nodeOf(ctx, cur);
  const probe = await withReconnect(
    ctx,
    node,
    async (t) => {
      for (;;) {
        const p = await waitForEnd(t, remote.dir, signal);
        if (p === null) return null;
        if (isOver(p, remote.bootId)) return p;
        await sleep(200);
      }
    },
    { signal },
  );
  if (probe === null) return cur;
  return recordVerdict(ctx, cur.id, verdictOf(cur, probe));
}

/** Waits for several jobs at once; resolves with all of them done. */
export async function waitJobs(ctx: AppContext, ids: string[], onDone?: (job: Job) => void): Promise<Job[]> {
  const jobs = await Promise.all(ids.map((id) => findJob(ctx, id)));
  return Promise.all(
    jobs.map(async (j) => {
      const done = await waitJob(ctx, j);
      onDone?.(done);
      return done;
    }),
  );
}
