/**
 * Finding jobs by id prefix and bringing active ones up to date from their nodes.
 */
import { classify } from '../core/classify.js';
import { gradeArgs, gradedVerdict, type GradingJudgement, judgeGrading, withGrading } from '../core/grading.js';
import { UserError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { finish, isActive, moveTo, withSupervisorTimes } from '../core/job.js';
import { usageOf } from '../core/peaks.js';
import { queueView } from '../core/queue.js';
import type { Job, MonitorFile, StatusFile, Verdict } from '../core/types.js';
import { cancelledWhileQueued, type StallReport, supervisorStalled } from '../core/verdicts.js';
import type { NodeConfig } from '../config/types.js';
import { probeJob, type Probe } from '../node/protocol.js';
import type { Transport } from '../transport/transport.js';
import { connectBounded } from './connect.js';
import type { AppContext } from './context.js';

export { findJob } from './find.js';

/** The node a job ran on, or a clear error if the config no longer has it. */
export function nodeOf(ctx: AppContext, job: Job): NodeConfig {
  const node = ctx.config.nodes[job.node];
  if (!node)
    throw new UserError(
      `job ${job.id} ran on node "${job.node}", which is not in the config any more.`,
      EXIT.unreachable,
      `Add node "${job.node}" back to ${ctx.config.source ?? 'the config'}.`,
    );
  return node;
}

/**
 * Whether a probe shows the job over: supervisor gone (it writes its last status.json, then
 * lets go of the lock), folder gone, or node rebooted. status.json alone is not believed while
 * the supervisor lives: the job runs as the same user and could write it.
 */
export function isOver(probe: Probe, launchBootId: string | null): boolean {
  if (probe.missing) return true;
  if (!probe.supervisorAlive) return true;
  return launchBootId !== null && probe.bootId !== null && probe.bootId !== launchBootId;
}

/** Whether a cancel was asked for, from the job's history. */
export function cancelRequested(job: Job): boolean {
  return job.history.some((h) => h.note === 'cancel requested');
}

/** Computes the verdict of a finished job from its probe. */
export function verdictOf(job: Job, probe: Probe): Verdict {
  const s = probe.status;
  // Cancelled in the node's GPU queue: the supervisor ended without starting the program.
  if (s && s.state === 'exited' && s.cancelled && s.pid === null && s.queuedAtMs != null)
    return cancelledWhileQueued(job.node);
  return classify({
    probe,
    limits: job.limits,
    cancelRequested: cancelRequested(job),
    launchBootId: job.remote?.bootId ?? null,
    node: job.node,
    jobId: job.id,
  });
}

/** What the supervisor and the sampler left in the job folder, recorded with the verdict. */
export interface FinalFiles {
  status: StatusFile | null;
  monitor: MonitorFile | null;
  /** The grading the verdict includes (issue 13), appended to job.gradings. */
  grading?: GradingJudgement | null;
}

/**
 * The grading of a job whose program succeeded (issue 13): the newest `gradings/N/` judged, or,
 * where the job's competition has a grader and the node recorded no grading, a grader failure.
 * Null when the job is not graded (no competition with a grader, no grading on the node) or the
 * program itself did not succeed (its verdict stays as it is).
 */
export function gradingOf(ctx: AppContext, job: Job, probe: Probe, program: Verdict): GradingJudgement | null {
  if (program.class !== 'succeeded') return null;
  const comp = job.competition ? ctx.config.competitions[job.competition] : undefined;
  const hasGrader = gradeArgs(comp).length > 0;
  // Only a job its supervisor was told to grade has a grading to believe (without a boundary,
  // the program could write a gradings/ folder of its own).
  if (!hasGrader) return null;
  const files = probe.grading ?? {
    number: 1,
    status: null,
    results: null,
    resultsBytes: null,
    message: null,
    stderrTail: '',
  };
  return judgeGrading(files, {
    jobId: job.id,
    node: job.node,
    competition: job.competition ?? '?',
    metric: comp?.metric ?? 'score',
    at: ctx.now().toISOString(),
  });
}

/**
 * Records a finished job's verdict in the ledger (once: a verdict already there wins). With the
 * job folder's final files, also the supervisor's start and end (`startedAt`, `endedAt`) and the
 * job's peaks (`usage`), so every command reports the same figures, even once the folder is gone.
 */
export async function recordVerdict(
  ctx: AppContext,
  jobId: string,
  verdict: Verdict,
  files: FinalFiles | null = null,
): Promise<Job> {
  const at = ctx.now().toISOString();
  return ctx.ledger.update((jobs) => {
    const i = jobs.findIndex((j) => j.id === jobId);
    if (i < 0) throw new Error(`job ${jobId} vanished from the ledger`);
    const cur = jobs[i] as Job;
    if (!isActive(cur)) return { jobs, result: cur };
    let next = cur;
    if (next.state === 'pending' || next.state === 'queued') next = moveTo(next, 'running', at, null);
    const g = files?.grading ?? null;
    next = finish(next, g ? gradedVerdict(verdict, g) : verdict, at);
    if (g) next = withGrading(next, g);
    if (files) {
      next = withSupervisorTimes(next, files.status);
      // A job recorded before its program's pid was seen (a bulk submit, a dropped link) learns it now.
      const pid = files.status?.pid;
      if (next.remote && next.remote.pid === null && typeof pid === 'number')
        next = { ...next, remote: { ...next.remote, pid } };
      const usage = usageOf(files.monitor, files.status);
      if (usage !== null) next = { ...next, usage };
    }
    const copy = [...jobs];
    copy[i] = next;
    return { jobs: copy, result: next };
  });
}

/**
 * Settles a probe: when it shows the job over, the verdict is classified and recorded (a verdict
 * already recorded wins) and the job returned done; otherwise the job is returned as it is. A
 * probe from untilOver that carries `stalled` records the stalled supervisor's verdict.
 */
export async function settle(
  ctx: AppContext,
  job0: Job,
  probe: Probe & { stalled?: StallReport },
  t?: Transport,
): Promise<Job> {
  if (job0.state === 'done') return job0;
  // A Slurm job: Slurm's word where the supervisor holds no lock (services/slurm); without a
  // connection to ask it, only the supervisor's own end is judged.
  if (job0.remote?.slurmJobId && !probe.stalled) {
    if (t) return (await import('./slurm.js')).settleSlurm(ctx, job0, probe, t);
    if (probe.status?.state !== 'exited' || probe.supervisorAlive) return syncQueued(ctx, job0, probe);
  }
  const job = await syncQueued(ctx, job0, probe);
  // The client ended a job whose supervisor stalled: no status of the supervisor's to classify.
  if (probe.stalled)
    return recordVerdict(ctx, job.id, supervisorStalled(probe.stalled), {
      status: probe.status,
      monitor: probe.monitor,
    });
  if (!isOver(probe, job.remote?.bootId ?? null)) return syncGrading(ctx, job, probe);
  const program = verdictOf(job, probe);
  return recordVerdict(ctx, job.id, program, {
    status: probe.status,
    monitor: probe.monitor,
    grading: gradingOf(ctx, job, probe, program),
  });
}

/**
 * Brings a queued job's entry up to date from a probe: running (with the GPUs its node leased,
 * from the program's own start) once the node started it, else its place in the node's queue.
 */
export async function syncQueued(ctx: AppContext, job: Job, probe: Probe): Promise<Job> {
  if (job.state !== 'queued' || probe.missing) return job;
  const s = probe.status;
  if (s && s.pid !== null && (s.state === 'running' || s.state === 'grading' || s.state === 'exited')) {
    // history keeps when gpuq noticed (as for every state); startedAt is the program's own start
    const at = ctx.now().toISOString();
    const gpus = Array.isArray(s.gpus) ? s.gpus : [];
    return ctx.ledger.updateJob(job.id, (j) =>
      j.state !== 'queued'
        ? j
        : withSupervisorTimes(
            moveTo(
              { ...j, gpus, queue: null, remote: j.remote ? { ...j.remote, pid: s.pid } : j.remote },
              'running',
              at,
              `started on ${j.node}${gpus.length ? ` GPU ${gpus.join(',')}` : ''}, pid ${s.pid}`,
            ),
            { startedAtMs: s.startedAtMs },
          ),
    );
  }
  if (!probe.queue || !probe.supervisorAlive) return job;
  const view = queueView(probe.queue, job.node, ctx.now().getTime());
  const cur = job.queue;
  if (cur && cur.position === view.position && cur.reason === view.reason && cur.estimatedStart === view.estimatedStart)
    return job;
  return ctx.ledger.updateJob(job.id, (j) => (j.state === 'queued' ? { ...j, queue: view } : j));
}

/** A running job whose supervisor says it is grading (issue 13) moves to `grading`. */
export async function syncGrading(ctx: AppContext, job: Job, probe: Probe): Promise<Job> {
  if (job.state !== 'running' || probe.status?.state !== 'grading' || !probe.supervisorAlive) return job;
  const at = ctx.now().toISOString();
  return ctx.ledger.updateJob(job.id, (j) =>
    j.state === 'running' ? moveTo(j, 'grading', at, 'the program exited 0; grading') : j,
  );
}

/** Appends a history note to a job (e.g. "cancel requested"). */
export async function addNote(ctx: AppContext, jobId: string, note: string): Promise<void> {
  const at = ctx.now().toISOString();
  await ctx.ledger.update((jobs) => ({
    jobs: jobs.map((j) => (j.id === jobId ? { ...j, history: [...j.history, { state: j.state, at, note }] } : j)),
    result: undefined,
  }));
}

/**
 * Probes active jobs on their nodes and records verdicts for those that ended. Nodes are
 * reached concurrently; an unreachable node leaves its jobs as they are (unreachable is not dead).
 */
export async function refreshJobs(
  ctx: AppContext,
  jobs: Job[],
  onUnreachable?: (node: string, why: string) => void,
): Promise<Job[]> {
  const active = jobs.filter((j) => isActive(j) && j.remote !== null);
  if (active.length === 0) return jobs;
  const byNode = new Map<string, Job[]>();
  for (const j of active) byNode.set(j.node, [...(byNode.get(j.node) ?? []), j]);
  const updated = new Map<string, Job>();
  await Promise.all(
    [...byNode.entries()].map(async ([nodeName, nodeJobs]) => {
      const node = ctx.config.nodes[nodeName];
      if (!node) return;
      let t: Transport;
      try {
        t = await connectBounded(ctx, node);
      } catch (e) {
        onUnreachable?.(nodeName, (e as Error).message);
        return;
      }
      try {
        for (const job of nodeJobs) {
          const settled = await settle(ctx, job, await probeJob(t, (job.remote as NonNullable<Job['remote']>).dir), t);
          if (settled !== job) updated.set(job.id, settled);
        }
      } catch (e) {
        onUnreachable?.(nodeName, (e as Error).message);
      } finally {
        await t.close();
      }
    }),
  );
  return jobs.map((j) => updated.get(j.id) ?? j);
}
