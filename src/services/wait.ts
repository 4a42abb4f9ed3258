/**
 * `gpuq wait` and `submit --wait`: block until jobs end, record their verdicts. One connection
 * per node however many jobs it runs; a dropped link is waited out (unreachable is not dead).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Job } from '../core/types.js';
import { waitForEnd } from '../node/protocol.js';
import type { AppContext } from './context.js';
import { findJob, isOver, nodeOf, recordVerdict, verdictOf } from './jobs.js';
import { openNodeLink, type NodeLink } from './reconnect.js';

/**
 * Waits for one job to end and returns it with its verdict recorded. Uses `link` (the node's
 * shared connection) when given, else a connection of its own.
 */
export async function waitJob(ctx: AppContext, job: Job, signal?: AbortSignal, link?: NodeLink): Promise<Job> {
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
  const own = link ? null : openNodeLink(ctx, nodeOf(ctx, cur), { signal });
  const l = (link ?? own) as NodeLink;
  try {
    const probe = await l.run(async (t) => {
      for (;;) {
        const p = await waitForEnd(t, remote.dir, signal);
        if (p === null) return null;
        // Over: exited, or the node answered and shows the supervisor gone or a new boot id.
        if (isOver(p, remote.bootId)) return p;
        await sleep(200);
      }
    });
    if (probe === null) return cur;
    return recordVerdict(ctx, cur.id, verdictOf(cur, probe));
  } finally {
    await own?.close();
  }
}

/** Waits for several jobs at once (one connection per node); resolves with all of them done. */
export async function waitJobs(
  ctx: AppContext,
  ids: string[],
  onDone?: (job: Job) => void,
  signal?: AbortSignal,
): Promise<Job[]> {
  const jobs = await Promise.all(ids.map((id) => findJob(ctx, id)));
  const links = new Map<string, NodeLink>();
  const linkFor = (j: Job): NodeLink | undefined => {
    if (j.state === 'done' || j.remote === null) return undefined;
    let l = links.get(j.node);
    if (!l) {
      l = openNodeLink(ctx, nodeOf(ctx, j), { signal });
      links.set(j.node, l);
    }
    return l;
  };
  try {
    return await Promise.all(
      jobs.map(async (j) => {
        const done = await waitJob(ctx, j, signal, linkFor(j));
        onDone?.(done);
        return done;
      }),
    );
  } finally {
    await Promise.all([...links.values()].map((l) => l.close()));
  }
}
