/**
 * `gpuq wait` and `submit --wait`: block until jobs end, record their verdicts. One connection
 * per node however many jobs it runs; a dropped link is waited out (unreachable is not dead).
 */
import type { Job } from '../core/types.js';
import type { AppContext } from './context.js';
import { openJobLink, settle, stallWatchOf, untilOver, untilStarted } from './job-link.js';
import { findJob } from './jobs.js';
import type { NodeLink } from './reconnect.js';

/**
 * Waits for one job to end and returns it with its verdict recorded. Uses `link` (the node's
 * shared connection) when given, else a connection of its own.
 */
export async function waitJob(ctx: AppContext, job: Job, signal?: AbortSignal, link?: NodeLink): Promise<Job> {
  const cur = job.state !== 'done' && job.remote === null ? await untilStarted(ctx, job) : job;
  if (cur.state === 'done' || cur.remote === null) return cur;
  const remote = cur.remote;
  const own = link ? null : openJobLink(ctx, cur, { signal });
  const l = (link ?? own) as NodeLink;
  try {
    const probe = await l.run((t) => untilOver(t, remote.dir, remote.bootId, signal, stallWatchOf(ctx, cur)));
    if (probe === null) return cur;
    return settle(ctx, cur, probe);
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
      l = openJobLink(ctx, j, { signal });
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
