/**
 * `gpuq list` and `gpuq show`: jobs from the ledger, active ones brought up to date first.
 */
import type { Job, JobState } from '../core/types.js';
import type { AppContext } from './context.js';
import { findJob, refreshJobs } from './jobs.js';

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
  jobs = await refreshJobs(ctx, jobs, (node, why) => ctx.out.info(`node ${node} is unreachable (${why}); its jobs are shown as last known.`));
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

/** One job in full, refreshed from its node when still active. */
export async function showJob(ctx: AppContext, id: string): Promise<Job> {
  const job = await findJob(ctx, id);
  const [fresh] = await refreshJobs(ctx, [job], (node, why) => ctx.out.info(`node ${node} is unreachable (${why}); showing the last known state.`));
  return fresh as Job;
}
