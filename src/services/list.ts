/**
 * `gpuq list` and `gpuq show`: jobs from the ledger, active ones brought up to date first.
 */
import type { Peak } from '../core/peaks.js';
import type { Job, JobState } from '../core/types.js';
import type { AppContext } from './context.js';
import { isActive } from '../core/job.js';
import { findJob } from './find.js';

export interface ListOptions {
  all: boolean;
  state: string | null;
  node: string | null;
  limit: number | null;
}

/** Default number of rows without --all or --limit. */
export const DEFAULT_LIST_LIMIT = 20;

/** Jobs newest first, filtered; returns the rows and how many more matched. */
export async function listJobs(ctx: AppContext, opts: ListOptions): Promise<{ jobs: Job[]; more: number }> {
  let jobs = opts.all ? await ctx.ledger.readAll() : await ctx.ledger.readLive();
  // probing nodes (and the classifier) is only loaded when some job is still active
  if (jobs.some(isActive)) {
    const { refreshJobs } = await import('./jobs.js');
    jobs = await refreshJobs(ctx, jobs, (node, why) =>
      ctx.out.info(`node ${node} is unreachable (${why}); its jobs are shown as last known.`),
    );
  }
  jobs = [...jobs].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  if (opts.state) jobs = jobs.filter((j) => matchesState(j, opts.state as string));
  if (opts.node) jobs = jobs.filter((j) => j.node === opts.node);
  const limit = opts.limit ?? (opts.all ? null : DEFAULT_LIST_LIMIT);
  if (limit === null || jobs.length <= limit) return { jobs, more: 0 };
  return { jobs: jobs.slice(0, limit), more: jobs.length - limit };
}

/** `--state` matches a state (running, done…) or a verdict class (failed, timeout…). */
export function matchesState(job: Job, state: string): boolean {
  return job.state === (state as JobState) || job.verdict?.class === state;
}

/** A job as `gpuq show` prints it: the ledger's record plus its peaks against limits. */
export type ShownJob = Job & { peaks: Peak[] | null };

/** How long `show` waits for the node (connect included) before printing without peaks. */
export const SHOW_NODE_TIMEOUT_MS = 5000;

/**
 * One job in full: refreshed from its node when still active, with its resource peaks against
 * limits read from the job folder (monitor.json) while that folder exists. One round trip,
 * bounded in time: a slow or unreachable node costs the peaks, not the answer.
 */
export async function showJob(ctx: AppContext, id: string): Promise<ShownJob> {
  const job = await findJob(ctx, id);
  if (!job.remote) return { ...job, peaks: null };
  const { readPeaks } = await import('./diagnose.js');
  const r = await readPeaks(ctx, job, SHOW_NODE_TIMEOUT_MS);
  if (r.error) {
    const what = isActive(job) ? 'the last known state' : 'the job without its peaks';
    ctx.out.info(`node ${job.node} is unreachable (${r.error}); showing ${what}.`);
  }
  return { ...r.job, peaks: r.peaks };
}
