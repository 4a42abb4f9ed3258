/**
 * `gpuq grade ID…` (issue 13): grades finished jobs again with the competition's current grader
 * (after a grader fix), on the node, in the job's folder: the next `gradings/N/`, judged like the
 * first (core/grading) and appended to `job.gradings`; the newest grading decides the verdict.
 * Only a job whose program succeeded and whose folder still holds its submission can be graded.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, usageError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { printableLine } from '../core/format.js';
import { gradeArgs, judgeGrading, withGrading } from '../core/grading.js';
import type { Job, VerdictClass } from '../core/types.js';
import type { CompetitionConfig } from '../config/types.js';
import { regradeJob } from '../node/protocol.js';
import type { AppContext } from './context.js';
import { openJobLink } from './job-link.js';
import { graderContainerArgs } from './grader-container.js';
import { findJob, nodeOf } from './jobs.js';
import { submitterName } from './submit.js';

/** The verdict classes a job whose program exited 0 (and was perhaps graded) can have. */
const PROGRAM_SUCCEEDED: readonly VerdictClass[] = ['succeeded', 'rejected', 'grading_failed'];

/** Why a job cannot be graded again (exit 2), or its competition when it can. */
export function regradable(ctx: AppContext, job: Job): CompetitionConfig {
  if (job.state !== 'done' || !job.verdict)
    throw usageError(
      `job ${job.id} is still ${job.state}: it is graded when its program ends.`,
      `Wait for it: gpuq wait ${job.id}`,
    );
  if (!PROGRAM_SUCCEEDED.includes(job.verdict.class))
    throw usageError(
      `job ${job.id}'s program did not succeed (verdict ${job.verdict.class}): only a job whose program exited 0 is graded.`,
      `See why with: gpuq diagnose ${job.id}`,
    );
  if (!job.competition)
    throw usageError(`job ${job.id} was not submitted to a competition: there is nothing to grade it against.`);
  const comp = ctx.config.competitions[job.competition];
  if (!comp)
    throw usageError(
      `job ${job.id}'s competition "${printableLine(job.competition)}" is not in the config any more.`,
      `Add it back to ${ctx.config.source ?? 'the config'}.`,
    );
  if (gradeArgs(comp).length === 0)
    throw usageError(
      `competition ${comp.name} has no grader.`,
      `Set competitions.${comp.name}.grader in ${ctx.config.source ?? 'the config'} (the command on the node, as a list).`,
    );
  if (!job.remote?.dir)
    throw usageError(`job ${job.id} never got a folder on a node: there is no submission to grade.`);
  return comp;
}

/**
 * Grades each job again, in the order given; every job is checked first (one that cannot be
 * graded: exit 2, nothing graded). `onGraded` hears each job once its new grading is recorded.
 */
export async function gradeJobs(ctx: AppContext, ids: string[], onGraded?: (job: Job) => void): Promise<Job[]> {
  const jobs: Job[] = [];
  for (const id of ids) {
    const job = await findJob(ctx, id);
    regradable(ctx, job);
    if (!jobs.some((j) => j.id === job.id)) jobs.push(job);
  }
  const scripts = {
    grade: readFileSync(join(ctx.packageRoot, 'templates', 'grade.py'), 'utf8'),
    fingerprint: readFileSync(join(ctx.packageRoot, 'templates', 'fingerprint.py'), 'utf8'),
  };
  const out: Job[] = [];
  for (const job of jobs) {
    const graded = await gradeOne(ctx, job, scripts);
    onGraded?.(graded);
    out.push(graded);
  }
  return out;
}

async function gradeOne(ctx: AppContext, job: Job, scripts: { grade: string; fingerprint: string }): Promise<Job> {
  const comp = regradable(ctx, job);
  const dir = (job.remote as NonNullable<Job['remote']>).dir;
  // A Docker job's grader runs in a container again (never kept: --keep-container was the run's).
  const container = graderContainerArgs(job, comp, nodeOf(ctx, job), job.image, submitterName(), false);
  const args = [...container, ...gradeArgs(comp)];
  const link = openJobLink(ctx, job);
  // Not retried: a grading that ran before a dropped link would be run twice.
  const r = await link
    .run((t) => regradeJob(t, dir, comp.submission, scripts, args), { maxAttempts: 1 })
    .finally(() => link.close());
  if (r.kind === 'no-folder')
    throw new UserError(
      `job ${job.id}'s folder is gone from node ${job.node} (pruned?): its submission cannot be graded again.`,
      EXIT.usage,
    );
  if (r.kind === 'no-submission')
    throw new UserError(
      `job ${job.id}'s folder on node ${job.node} holds no ${printableLine(comp.submission)}: there is no submission to grade.`,
      EXIT.usage,
      `gpuq show ${job.id} shows its gradings.`,
    );
  const files = r.probe.grading ?? {
    number: (job.gradings?.length ?? 0) + 1,
    status: null,
    results: null,
    resultsBytes: null,
    message: null,
    stderrTail: '',
  };
  const judgement = judgeGrading(files, {
    jobId: job.id,
    node: job.node,
    competition: comp.name,
    metric: comp.metric,
    at: ctx.now().toISOString(),
  });
  const at = ctx.now().toISOString();
  return ctx.ledger.updateJob(job.id, (j) => {
    const next = withGrading(j, judgement);
    return {
      ...next,
      history: [
        ...next.history,
        { state: next.state, at, note: `graded again (grading ${files.number}): ${judgement.summary}` },
      ],
    };
  });
}
