/**
 * Jobs on a Slurm node (README, "Slurm"): Slurm queues them and allocates their GPUs; gpuq keeps
 * its supervisor, verdicts and views. Submit records the Slurm job id; a wait watches squeue while
 * the job is pending, then the supervisor's lock as everywhere, and asks Slurm (squeue, sacct)
 * where the supervisor could not write the end.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { NodeFaultError } from '../core/errors.js';
import { moveTo, withSupervisorTimes } from '../core/job.js';
import {
  type SbatchSpec,
  sbatchArgs,
  slurmPhase,
  slurmQueueView,
  slurmStateOf,
  slurmVerdict,
  withSlurmRecord,
} from '../core/slurm.js';
import type { Job, Verdict } from '../core/types.js';
import type { NodeConfig } from '../config/types.js';
import { type Probe, probeJob, waitForEnd } from '../node/protocol.js';
import type { LaunchFiles } from '../node/protocol.js';
import { cancelSlurmJob, endSlurmJob, launchSlurm, lookAtSlurmJob, type SlurmLook } from '../node/slurm.js';
import type { Transport } from '../transport/transport.js';
import type { AppContext } from './context.js';
import { cancelRequested, findJob, recordVerdict, syncQueued, verdictOf } from './jobs.js';
import type { NodeLink } from './reconnect.js';

/** Whether a job runs on a Slurm node (its submit recorded a Slurm job id). */
export function slurmIdOf(job: Job): string | null {
  return job.remote?.slurmJobId ?? null;
}

/** The sbatch arguments of a job on `node` (core/slurm.sbatchArgs with the node's settings). */
export function sbatchFor(node: NodeConfig, job: Job, dir: string): string[] {
  const s = node.slurm;
  const spec: SbatchSpec = {
    jobId: job.id,
    dir,
    partition: s?.partition ?? null,
    account: s?.account ?? null,
    qos: s?.qos ?? null,
    gpus: job.limits.gpus,
    memoryBytes: job.limits.memoryBytes,
    cpusPerTask: s?.cpusPerTask ?? 1,
    timeoutS: job.limits.timeoutS,
    graceS: job.limits.graceS,
    extra: s?.sbatchArgs ?? [],
  };
  return sbatchArgs(spec);
}

/**
 * Step 3 of a submit on a Slurm node: writes the job folder and hands it to sbatch, then records
 * the job running (its supervisor started within the first look) or queued with Slurm's reason.
 * Throws (nothing recorded as running) when Slurm refuses or cannot be reached.
 */
export async function launchOnSlurm(
  ctx: AppContext,
  job: Job,
  node: NodeConfig,
  t: Transport,
  files: LaunchFiles,
): Promise<Job> {
  const l = await launchSlurm(t, files, sbatchFor(node, job, files.dir));
  const s = l.status;
  const remote = {
    dir: l.dir,
    supervisorPid: typeof s?.supervisorPid === 'number' ? s.supervisorPid : null,
    pid: typeof s?.pid === 'number' ? s.pid : null,
    bootId: null,
    boundary: s?.boundary ?? null,
    slurmJobId: l.slurmJobId,
  };
  const at = ctx.now().toISOString();
  const started = s !== null && typeof s.pid === 'number' && (s.state === 'running' || s.state === 'exited');
  return ctx.ledger.updateJob(job.id, (j) => {
    if (started) {
      const gpus = Array.isArray(s.gpus) ? s.gpus : [];
      return withSupervisorTimes(
        moveTo(
          { ...j, node: node.name, gpus, remote, queue: null },
          'running',
          at,
          `started on ${node.name} as Slurm job ${l.slurmJobId}${gpus.length ? ` GPU ${gpus.join(',')}` : ''}, pid ${s.pid}`,
        ),
        { startedAtMs: s.startedAtMs },
      );
    }
    const queue = l.row
      ? slurmQueueView({ row: l.row, acct: null, position: null, zone: l.zone })
      : { position: 1, reason: 'Slurm: waiting to be scheduled', estimatedStart: null };
    return moveTo(
      { ...j, node: node.name, gpus: [], remote, queue },
      'queued',
      at,
      `queued on ${node.name} as Slurm job ${l.slurmJobId}`,
    );
  });
}

/** Whether a look at the folder and at Slurm decides the job's end, and the verdict then. */
function judge(job: Job, probe: Probe, look: SlurmLook | null): Verdict | null {
  const slurmId = slurmIdOf(job) as string;
  const input = (l: SlurmLook) => ({
    slurmId,
    view: l.view,
    cancelRequested: cancelRequested(job) || l.cancelAsked,
    supervisorStarted: probe.status !== null,
    timeoutS: job.limits.timeoutS,
  });
  // The supervisor wrote its end: its evidence, with what Slurm adds.
  if (probe.status?.state === 'exited' && !probe.supervisorAlive) {
    const v = verdictOf(job, probe);
    return look ? withSlurmRecord(v, input(look)) : v;
  }
  if (probe.supervisorAlive || look === null) return null;
  return slurmVerdict(input(look));
}

/**
 * `settle` for a Slurm job (services/jobs): the probe, and Slurm where the supervisor does not
 * hold its lock; the verdict recorded when it is over, the queue place while pending.
 */
export async function settleSlurm(ctx: AppContext, job: Job, probe: Probe, t: Transport): Promise<Job> {
  if (job.state === 'done') return job;
  return (await stepSlurm(ctx, job, t, probe)).job;
}

/**
 * Waits until a Slurm job's supervisor runs (it holds its lock) or the job is over, keeping its
 * queue place up to date: what `logs -f` and `watch` do before following a job Slurm still holds.
 */
export async function untilSlurmRuns(ctx: AppContext, job: Job, link: NodeLink, signal?: AbortSignal): Promise<Job> {
  const remote = job.remote as NonNullable<Job['remote']>;
  let cur = job;
  // Recorded running: its supervisor had started (submit's look saw it), so there is output to
  // follow already; a round trip here would only delay the follow and the wait behind it.
  while (!signal?.aborted && cur.state !== 'done' && cur.state !== 'running') {
    const step = await link.run(async (t) => stepSlurm(ctx, cur, t, await probeJob(t, remote.dir)));
    cur = step.job;
    if (step.over || step.supervising) return cur;
    await sleep(cur.state === 'queued' ? 1000 : 200, undefined, { signal }).catch(() => undefined);
  }
  return cur;
}

/** A verdict Slurm may explain better: a signal from outside gpuq (an scancel, a preemption). */
function outsideSignal(v: Verdict): boolean {
  return v.class === 'signaled' || v.class === 'lost';
}

/** One round of following a Slurm job: what it is now and whether it is over. */
interface SlurmStep {
  job: Job;
  over: boolean;
  /** The supervisor holds its lock: the next wait may block on it. */
  supervising: boolean;
}

/**
 * Looks at a Slurm job once (its folder, then Slurm when the supervisor does not hold the lock
 * or has just ended) and records what it learnt: queue place, start, or verdict.
 */
async function stepSlurm(ctx: AppContext, job: Job, t: Transport, probe0: Probe): Promise<SlurmStep> {
  const remote = job.remote as NonNullable<Job['remote']>;
  const slurmId = slurmIdOf(job) as string;
  let probe = probe0;
  let cur = await syncQueued(ctx, job, probe);
  if (probe.supervisorAlive && !probe.missing) return { job: cur, over: false, supervising: true };
  // The supervisor recorded the end and nothing outside gpuq stopped the program (no SIGTERM or
  // SIGKILL it cannot explain): its verdict stands, without a round trip to Slurm.
  if (probe.status?.state === 'exited' && !probe.missing && !outsideSignal(verdictOf(cur, probe))) {
    const v = judge(cur, probe, null) as Verdict;
    const done = await recordVerdict(ctx, cur.id, v, { status: probe.status, monitor: probe.monitor });
    return { job: done, over: true, supervising: false };
  }
  let look = await lookAtSlurmJob(t, slurmId, remote.dir);
  const st = slurmStateOf(look.view);
  if (st !== null && slurmPhase(st) !== 'ended' && probe.status?.state !== 'exited') {
    // The supervisor may have started and ended between the two looks: look at the folder again.
    probe = await probeJob(t, remote.dir);
    cur = await syncQueued(ctx, cur, probe);
    if (probe.supervisorAlive) return { job: cur, over: false, supervising: true };
    if (probe.status?.state !== 'exited') {
      if (slurmPhase(st) === 'waiting' && cur.state === 'queued') {
        const view = slurmQueueView(look.view);
        const q = cur.queue;
        if (!q || q.position !== view.position || q.reason !== view.reason || q.estimatedStart !== view.estimatedStart)
          cur = await ctx.ledger.updateJob(cur.id, (j) => (j.state === 'queued' ? { ...j, queue: view } : j));
      }
      return { job: cur, over: false, supervising: false };
    }
  }
  if (st !== null && slurmPhase(st) === 'ended' && probe.status?.state !== 'exited') {
    // Slurm says it ended: the folder's last word first (the supervisor may have just written it).
    probe = await probeJob(t, remote.dir);
    if (probe.supervisorAlive) return { job: cur, over: false, supervising: true };
    look = await lookAtSlurmJob(t, slurmId, remote.dir);
  }
  // A SIGTERM from outside while Slurm still shows the job completing: an scancel shows as
  // CANCELLED only once its processes are gone (moments after the supervisor's end).
  for (let i = 0; i < 40 && probe.status?.state === 'exited' && look.view.row; i++) {
    const st2 = slurmStateOf(look.view);
    if (st2 === null || slurmPhase(st2) === 'ended' || !outsideSignal(verdictOf(cur, probe))) break;
    await sleep(250);
    look = await lookAtSlurmJob(t, slurmId, remote.dir);
  }
  const v = judge(cur, probe, look);
  if (v === null) return { job: cur, over: false, supervising: false };
  const done = await recordVerdict(ctx, cur.id, v, { status: probe.status, monitor: probe.monitor });
  return { job: done, over: true, supervising: false };
}

/** What a wait on a Slurm job is told on the way (the status line's probes). */
export interface SlurmWaitLook {
  everyS: number;
  onProbe(p: Probe, job: Job): void | Promise<void>;
}

/**
 * Waits for a Slurm job to end and returns it with its verdict recorded: squeue while it is
 * pending (its queue place kept in the ledger), the supervisor's lock once it runs (the end is
 * seen at once), Slurm's record where the supervisor could not write. A gpuq cancel the
 * supervisor has not answered within the grace period and 15 s is ended with scancel.
 */
export async function waitSlurmJob(
  ctx: AppContext,
  job: Job,
  link: NodeLink,
  signal?: AbortSignal,
  look?: SlurmWaitLook,
): Promise<Job> {
  const remote = job.remote as NonNullable<Job['remote']>;
  let cur = job;
  // Recorded running: its supervisor holds job.lock, so the first round already waits on the
  // lock (a supervisor gone by then frees it at once, and the probe after it tells the rest).
  let supervising = job.state === 'running';
  let cancelSeenAt: number | null = null;
  let ended = false;
  let silent = false;
  for (let round = 0; !signal?.aborted; round++) {
    const chunk = supervising ? (look ? Math.min(60, round === 0 ? 1 : look.everyS) : 60) : 1;
    const step = await link
      .run(async (t) => {
        const p = supervising ? await waitForEnd(t, remote.dir, signal, chunk) : await probeJob(t, remote.dir);
        if (p === null) return null;
        const s = await stepSlurm(ctx, cur, t, p);
        await look?.onProbe(p, s.job);
        return s;
      })
      .catch((e: unknown) => {
        // slurmctld not answering is no verdict: say so once and keep waiting.
        if (!(e instanceof NodeFaultError) || !/Slurm did not answer/.test(e.message)) throw e;
        if (!silent) ctx.out.info(`${e.message}; waiting for it to answer`);
        silent = true;
        return 'silent' as const;
      });
    if (step === null) return cur;
    if (step === 'silent') {
      await sleep(2000, undefined, { signal }).catch(() => undefined);
      continue;
    }
    silent = false;
    cur = step.job;
    if (step.over) return cur;
    supervising = step.supervising;
    if (cancelRequested(cur) && !ended) {
      cancelSeenAt ??= ctx.now().getTime();
      if (ctx.now().getTime() - cancelSeenAt > (cur.limits.graceS + 15) * 1000) {
        ended = true;
        await link.run((t) => endSlurmJob(t, slurmIdOf(cur) as string));
      }
    }
    if (!supervising) await sleep(cur.state === 'queued' ? 1000 : 200, undefined, { signal }).catch(() => undefined);
  }
  return cur;
}

/**
 * `gpuq cancel` of a Slurm job: scancel while it is pending, SIGUSR1 to its supervisor through
 * Slurm once it runs (SIGTERM to the program, SIGKILL after the grace); then waits for the end.
 */
export async function cancelSlurm(ctx: AppContext, job: Job, link: NodeLink): Promise<Job> {
  const remote = job.remote as NonNullable<Job['remote']>;
  await link.run((t) => cancelSlurmJob(t, slurmIdOf(job) as string, remote.dir), { maxAttempts: 3 });
  return waitSlurmJob(ctx, await findJob(ctx, job.id), link);
}
