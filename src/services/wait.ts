/**
 * `gpuq wait` and `submit --wait`: block until jobs end, record their verdicts. One connection
 * per node however many jobs it runs; a dropped link is waited out (unreachable is not dead).
 */
import type { Job, QueueFile, Sample } from '../core/types.js';
import type { AppContext } from './context.js';
import {
  type LateStallWatch,
  openJobLink,
  queuedLookS,
  settle,
  type StallWatch,
  stallWatchOf,
  untilOver,
  untilStarted,
  type WaitLook,
} from './job-link.js';
import { findJob, syncGrading, syncQueued } from './jobs.js';
import { followStreams } from './logs.js';
import type { NodeLink } from './reconnect.js';
import { slurmIdOf, untilSlurmRuns, waitSlurmJob } from './slurm.js';

/** What a wait knows of a job on the way: the ledger's job, its latest sample and queue.json. */
export interface WaitProgress {
  job: Job;
  sample: Sample | null;
  queue: QueueFile | null;
}

/**
 * Someone who wants to see a job while it is waited for (the terminal's status line): the wait
 * looks at the node every `everyS` seconds (its own probe, made more often) and tells `onProgress`.
 */
export interface WaitWatch {
  everyS: number;
  onProgress(p: WaitProgress): void;
}

/**
 * Waits for one job to end and returns it with its verdict recorded. Uses `link` (the node's
 * shared connection) when given, else a connection of its own. With `watch`, each probe on the
 * way brings a queued job's ledger entry up to date (its place, or its start) and is reported.
 */
export async function waitJob(
  ctx: AppContext,
  job: Job,
  signal?: AbortSignal,
  link?: NodeLink,
  watch?: WaitWatch,
): Promise<Job> {
  const report = (j: Job, sample: Sample | null = null, queue: QueueFile | null = null) =>
    watch?.onProgress({ job: j, sample, queue });
  report(job);
  let cur =
    job.state !== 'done' && job.remote === null
      ? await untilStarted(ctx, job, signal, watch ? report : undefined)
      : job;
  if (cur.state === 'done' || cur.remote === null) return cur;
  const remote = cur.remote;
  // A queued job has no deadline yet: its stall watch starts once a probe shows it started.
  const stall: StallWatch | LateStallWatch | undefined =
    cur.state === 'queued'
      ? {
          everyS: queuedLookS(ctx, cur),
          next: async (p) => {
            cur = await syncQueued(ctx, cur, p);
            return cur.state === 'running' ? stallWatchOf(ctx, cur) : undefined;
          },
        }
      : stallWatchOf(ctx, cur);
  const look: WaitLook | undefined = watch && {
    everyS: watch.everyS,
    onProbe: async (p) => {
      cur = await syncGrading(ctx, await syncQueued(ctx, cur, p), p);
      report(cur, p.recentSamples.at(-1) ?? null, p.queue ?? null);
    },
  };
  const own = link ? null : openJobLink(ctx, cur, { signal });
  const l = (link ?? own) as NodeLink;
  try {
    if (slurmIdOf(cur) !== null)
      return await waitSlurmJob(
        ctx,
        cur,
        l,
        signal,
        watch && {
          everyS: watch.everyS,
          onProbe: (p, j) => report(j, p.recentSamples.at(-1) ?? null, null),
        },
      );
    const probe = await l.run((t) => untilOver(t, remote.dir, remote.bootId, signal, stall, look));
    if (probe === null) return cur;
    return settle(ctx, cur, probe);
  } finally {
    await own?.close();
  }
}

/**
 * Waits for one job while streaming its stdout and stderr from the start (as `logs -f` does, to
 * our stdout and stderr), and returns it with its verdict once both the output and the job have
 * ended. The wait and the follow share the node's connection.
 */
export async function waitFollowing(ctx: AppContext, job: Job, signal?: AbortSignal, link?: NodeLink): Promise<Job> {
  let cur = job.state !== 'done' && job.remote === null ? await untilStarted(ctx, job, signal) : job;
  if (cur.remote === null) return cur;
  const remote = cur.remote;
  const own = link ? null : openJobLink(ctx, cur, { signal });
  const l = (link ?? own) as NodeLink;
  // A job Slurm still holds has no output to follow yet (once over, the follow prints what it wrote).
  if (slurmIdOf(cur) !== null && cur.state !== 'done')
    cur = await untilSlurmRuns(ctx, cur, l, signal).catch(async (e: unknown) => {
      await own?.close();
      throw e;
    });
  // Whichever of the two fails first stops the other, and its error is the one reported.
  const stop = new AbortController();
  const both = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  let failed: { error: unknown } | null = null;
  const failing = <T>(p: Promise<T>) =>
    p.catch((error: unknown) => {
      failed ??= { error };
      stop.abort();
      return null;
    });
  try {
    const [, done] = await Promise.all([
      failing(followStreams(ctx, l, remote.dir, ['stdout', 'stderr'], null, both)),
      failing(waitJob(ctx, cur, both, l)),
    ]);
    const f = failed as { error: unknown } | null;
    if (f) throw f.error;
    return done as Job;
  } finally {
    await own?.close();
  }
}

/**
 * Waits for several jobs at once (one connection per node); resolves with all of them done.
 * With `watch`, each job's progress is reported as waitJob reports it.
 */
export async function waitJobs(
  ctx: AppContext,
  ids: string[],
  onDone?: (job: Job) => void,
  signal?: AbortSignal,
  watch?: WaitWatch,
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
        const done = await waitJob(ctx, j, signal, linkFor(j), watch);
        onDone?.(done);
        return done;
      }),
    );
  } finally {
    await Promise.all([...links.values()].map((l) => l.close()));
  }
}
