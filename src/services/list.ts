/**
 * `gpuq list` and `gpuq show`: jobs from the ledger, active ones brought up to date first.
 */
import { type JobFigures, withFigures } from '../core/peaks.js';
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

/**
 * Jobs newest first, filtered; returns the rows, how many more matched, and how many the ledger
 * holds before filtering (so "no job matches" can be told from "no jobs yet").
 */
export async function listJobs(
  ctx: AppContext,
  opts: ListOptions,
): Promise<{ jobs: Job[]; more: number; total: number }> {
  let jobs = opts.all ? await ctx.ledger.readAll() : await ctx.ledger.readLive();
  // probing nodes (and the classifier) is only loaded when some job is still active
  if (jobs.some(isActive)) {
    const { refreshJobs } = await import('./jobs.js');
    jobs = await refreshJobs(ctx, jobs, (node, why) =>
      ctx.out.info(`node ${node} is unreachable (${why}); its jobs are shown as last known.`),
    );
  }
  const total = jobs.length;
  jobs = [...jobs].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  if (opts.state) jobs = jobs.filter((j) => matchesState(j, opts.state as string));
  if (opts.node) jobs = jobs.filter((j) => j.node === opts.node);
  const limit = opts.limit ?? (opts.all ? null : DEFAULT_LIST_LIMIT);
  if (limit === null || jobs.length <= limit) return { jobs, more: 0, total };
  return { jobs: jobs.slice(0, limit), more: jobs.length - limit, total };
}

/** `--state` matches a state (running, done…) or a verdict class (failed, timeout…). */
export function matchesState(job: Job, state: string): boolean {
  return job.state === (state as JobState) || job.verdict?.class === state;
}

/** A job as `gpuq show` prints it: the ledger's record plus its duration and peaks against limits. */
export type ShownJob = Job & JobFigures;

/** How long `show` waits for the node (connect included) before printing without peaks. */
export const SHOW_NODE_TIMEOUT_MS = 5000;

/**
 * One job in full, with its duration and peaks. A finished job's peaks are those recorded with
 * its verdict (the ledger alone, as `list --json` has them); a job still active, or one recorded
 * before peaks were, is read from its node (one round trip, bounded in time: a slow or
 * unreachable node costs the peaks, not the answer).
 */
export async function showJob(ctx: AppContext, id: string): Promise<ShownJob> {
  const job = await findJob(ctx, id);
  const nowMs = ctx.now().getTime();
  if (!job.remote || job.usage != null) return withFigures(job, nowMs);
  const { readPeaks } = await import('./diagnose.js');
  const r = await readPeaks(ctx, job, SHOW_NODE_TIMEOUT_MS);
  if (r.error) {
    const what = isActive(job) ? 'the last known state' : 'the job without its peaks';
    ctx.out.info(`node ${job.node} is unreachable (${r.error}); showing ${what}.`);
  }
  const shown = withFigures(r.job, nowMs);
  // A job still in its node's queue has not run: the supervisor's clock would read as its run time.
  if (shown.state === 'queued') return { ...shown, peaks: null };
  return shown.peaks !== null ? shown : { ...shown, peaks: r.peaks };
}
