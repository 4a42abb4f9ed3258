/**
 * `gpuq results ID [--out DIR]` (a graded job's score, metrics, grader message, fingerprints and
 * grading history; `--out` copies the newest grading's submission and feedback back, through the
 * same safe copy as `gpuq get`) and `gpuq results --competition NAME [--all]` (the leaderboard,
 * core/leaderboard). Both read the ledger; a job still active is brought up to date first.
 */
import { resolve } from 'node:path';
import type { CompetitionConfig } from '../config/types.js';
import { usageError } from '../core/errors.js';
import { isActive } from '../core/job.js';
import { type BoardRow, type Grading, leaderboard } from '../core/leaderboard.js';
import type { Job } from '../core/types.js';
import type { AppContext } from './context.js';
import { findJob } from './find.js';
import { copyFromJob, type Received } from './get.js';

/** A job's results (the `--json` shape of `gpuq results ID`, besides `out`). */
export interface JobResults {
  id: string;
  name: string;
  node: string;
  competition: string;
  /** The competition's metric and direction, from the config (null when it is not there any more). */
  metric: string | null;
  higherIsBetter: boolean | null;
  state: Job['state'];
  /** Whether the job has a grading; `note` says why not. */
  graded: boolean;
  note: string | null;
  /** The newest grading's number (its folder gradings/N on the node), or null. */
  grading: number | null;
  /** The newest grading, or null. */
  newest: Grading | null;
  /** Every grading, oldest first. */
  gradings: Grading[];
  /** With --out: what was copied. */
  out?: { dir: string; files: Received['files']; skipped: Received['skipped']; missing: string[] };
}

/** The job, brought up to date from its node when it is still active (a node that does not answer leaves it as recorded). */
async function currentJob(ctx: AppContext, id: string): Promise<Job> {
  const job = await findJob(ctx, id);
  if (!isActive(job) || job.remote === null) return job;
  const { refreshJobs } = await import('./jobs.js');
  const [fresh] = await refreshJobs(ctx, [job], (node, why) =>
    ctx.out.info(`node ${node} is unreachable (${why}); showing the job as last known.`),
  );
  return fresh ?? job;
}

/** Why a job of a competition has no grading, in a few words. */
function notGradedNote(job: Job, comp: CompetitionConfig | null): string {
  if (job.state !== 'done') return `not graded yet: the job is ${job.state}`;
  const v = job.verdict;
  if (v && v.class !== 'succeeded' && v.class !== 'rejected' && v.class !== 'grading_failed')
    return `not graded: its program did not succeed (${v.class}); only a program that exits 0 is graded`;
  if (comp && comp.grader === null) return `not graded: competition ${comp.name} has no grader in the config`;
  return 'not graded';
}

/**
 * A job's results from the ledger. Exit 2 for a job without a competition (it is never graded);
 * a job of a competition that has no grading yet is answered with `graded: false` and a note.
 */
export async function jobResults(ctx: AppContext, id: string): Promise<JobResults> {
  const job = await currentJob(ctx, id);
  if (job.competition === null)
    throw usageError(
      `job ${job.id} has no competition, so it is not graded.`,
      'Submit with --competition NAME to have a job graded (gpuq competitions lists them).',
    );
  const comp = ctx.config.competitions[job.competition] ?? null;
  const gradings = job.gradings ?? [];
  const newest = gradings[gradings.length - 1] ?? null;
  return {
    id: job.id,
    name: job.name,
    node: job.node,
    competition: job.competition,
    metric: comp?.metric ?? null,
    higherIsBetter: comp?.higherIsBetter ?? null,
    state: job.state,
    graded: newest !== null,
    note: newest === null ? notGradedNote(job, comp) : null,
    grading: newest === null ? null : (newest.number ?? gradings.length),
    newest,
    gradings,
  };
}

export interface ResultsCopyOptions {
  id: string;
  /** The folder to copy into (relative to cwd). */
  out: string;
  force: boolean;
}

/**
 * `gpuq results ID --out DIR`: the job's results, and the newest grading's `submission` and
 * `feedback/` folder (results.jsonl, message.txt, whatever the grader wrote) copied from the job
 * folder's gradings/N into DIR, as `gpuq get` copies: no link followed on the node, no name that
 * could leave DIR, files over the get size caps left out, nothing overwritten without `force`.
 * Exit 2 for a job that was not graded.
 */
export async function copyResults(ctx: AppContext, opts: ResultsCopyOptions, cwd: string): Promise<JobResults> {
  const r = await jobResults(ctx, opts.id);
  if (!r.graded || r.grading === null)
    throw usageError(`nothing to copy: job ${r.id} ${r.note ?? 'was not graded'}.`, `See: gpuq show ${r.id}`);
  const job = await findJob(ctx, r.id);
  if (job.remote === null) throw usageError(`job ${job.id} has no folder on a node.`);
  const dir = resolve(cwd, opts.out);
  const got = await copyFromJob(ctx, job, {
    root: `gradings/${r.grading}`,
    paths: ['submission', 'feedback'],
    entry: '',
    outDir: dir,
    force: opts.force,
  });
  return { ...r, out: { dir, files: got.files, skipped: got.skipped, missing: got.missing } };
}

/** The leaderboard as `gpuq results --competition` answers it. */
export interface CompetitionResults {
  competition: CompetitionConfig;
  reference: ReturnType<typeof leaderboard>['reference'];
  rows: BoardRow[];
}

/**
 * The leaderboard of a competition of the config (exit 2 for another name): its graded jobs from
 * the whole ledger (archive included), best first (core/leaderboard), with rejected and failed
 * gradings too under `all`. Active jobs of the competition are brought up to date first.
 */
export async function competitionResults(
  ctx: AppContext,
  opts: { competition: string; all: boolean },
): Promise<CompetitionResults> {
  const { competitionNamed } = await import('./competitions.js');
  const comp = competitionNamed(ctx, opts.competition);
  let jobs = (await ctx.ledger.readAll()).filter((j) => j.competition === comp.name);
  if (jobs.some((j) => isActive(j) && j.remote !== null)) {
    const { refreshJobs } = await import('./jobs.js');
    jobs = await refreshJobs(ctx, jobs, (node, why) =>
      ctx.out.info(`node ${node} is unreachable (${why}); its jobs are shown as last known.`),
    );
  }
  const board = leaderboard(jobs, comp.name, { higherIsBetter: comp.higherIsBetter, all: opts.all });
  return { competition: comp, reference: board.reference, rows: board.rows };
}
