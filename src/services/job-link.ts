/**
 * One way for a service to reach a job: the job's node link (reconnect policy and connect
 * timeout, see reconnect.ts), waiting until the job has started (its submit recorded a folder)
 * or is over, and settling a probe into a recorded verdict. wait, cancel, logs, watch, diagnose
 * and the list refresh all go through these, so "if the node says it is over, record its
 * verdict" is written once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { noticedRunningAt } from '../core/job.js';
import type { Job } from '../core/types.js';
import { type StallReport, stallDeadlineMs, stallMarginMs, submitStopped } from '../core/verdicts.js';
import { type Probe, stopStalled, waitForEnd } from '../node/protocol.js';
import type { Transport } from '../transport/transport.js';
import type { AppContext } from './context.js';
import { findJob, isOver, nodeOf, recordVerdict } from './jobs.js';

export { settle } from './jobs.js';
import { type LinkOptions, type NodeLink, openNodeLink } from './reconnect.js';

/** How long a job still being submitted by another process may take to record its folder. */
const START_GRACE_TICKS = 120;
const START_TICK_MS = 500;

/** Opens the link to the node a job runs on (lazily; close it when done). */
export function openJobLink(ctx: AppContext, job: Job, opts: LinkOptions = {}): NodeLink {
  return openNodeLink(ctx, nodeOf(ctx, job), opts);
}

/**
 * Waits until a job has a folder on its node or is done: a job still being submitted by another
 * process has none yet, so it gets a minute. `onChange` hears each new version of the job. A
 * job still without a folder after that is recorded as never started (its submit stopped),
 * unless `signal` aborted the wait.
 */
export async function untilStarted(
  ctx: AppContext,
  job: Job,
  signal?: AbortSignal,
  onChange?: (job: Job) => void,
): Promise<Job> {
  let cur = job;
  for (let i = 0; cur.state !== 'done' && cur.remote === null && i < START_GRACE_TICKS && !signal?.aborted; i++) {
    await sleep(START_TICK_MS, undefined, { signal }).catch(() => undefined);
    const next = await findJob(ctx, cur.id);
    if (next.state !== cur.state || next.remote !== null) onChange?.(next);
    cur = next;
  }
  if (cur.state === 'done' || cur.remote !== null || signal?.aborted) return cur;
  return recordVerdict(ctx, cur.id, submitStopped());
}

/** A probe that ends a wait: the job is over, or its supervisor stalled and the client ended it. */
export type EndProbe = Probe & { stalled?: StallReport };

/** What untilOver needs to tell a stalled supervisor from a slow job (see stallWatchOf). */
export interface StallWatch {
  jobId: string;
  deadlineMs: number;
  timeoutS: number;
  now: () => number;
  /**
   * Seconds a supervisor may spend grading (issue 13: the grader's timeout, its kill and the
   * fingerprints), granted from when a probe first shows it grading; absent: no grading.
   */
  gradingS?: number;
}

/** The stall watch for a running job, or undefined where it cannot apply (no recorded start). */
export function stallWatchOf(ctx: AppContext, job: Job): StallWatch | undefined {
  if (job.state !== 'running' && job.state !== 'grading') return undefined;
  // The client's own clock on both sides: the supervisor's start is the node's clock, which
  // may be off from this machine's by more than the stall margin.
  const deadlineMs = stallDeadlineMs(
    noticedRunningAt(job) ?? job.startedAt,
    job.limits,
    ctx.config.nodes[job.node]?.stallMarginS ?? null,
  );
  if (deadlineMs === null) return undefined;
  const comp = job.competition ? ctx.config.competitions[job.competition] : undefined;
  const gradingS = comp?.grader ? comp.graderLimits.timeoutS + GRADING_SLACK_S : undefined;
  // Grading with a grader the config no longer has: no allowance to judge a stall by.
  if (job.state === 'grading' && gradingS === undefined) return undefined;
  const now = () => ctx.now().getTime();
  // Already grading when the wait begins: the grader's allowance counts from now.
  const deadline =
    job.state === 'grading' && gradingS !== undefined ? Math.max(deadlineMs, now() + gradingS * 1000) : deadlineMs;
  return { jobId: job.id, deadlineMs: deadline, timeoutS: job.limits.timeoutS, now, gradingS };
}

/** Beyond the grader's own timeout: its kill, the submission copy and the fingerprints of large folders. */
const GRADING_SLACK_S = 600;

/** The longest one node-side wait lasts before the client looks again. */
const WAIT_CHUNK_S = 60;
/**
 * The stall watch of a job that waits in its node's GPU queue: none until it starts. `next` is
 * asked after each probe (which it may record: the job's start) and returns the watch once there
 * is one; until then the node-side waits last at most `everyS`, so the start is seen in time.
 */
export interface LateStallWatch {
  everyS: number;
  next(p: Probe): Promise<StallWatch | undefined>;
}

/**
 * How often to look at a queued job so that its start is seen well within its stall margin: half
 * the margin, between 5 s and the usual 60 s (a job of an hour: 60 s, no more round trips).
 */
export function queuedLookS(ctx: AppContext, job: Job): number {
  const marginS = stallMarginMs(job.limits.timeoutS, ctx.config.nodes[job.node]?.stallMarginS ?? null) / 1000;
  return Math.min(WAIT_CHUNK_S, Math.max(5, Math.floor(marginS / 2)));
}

/**
 * Someone who wants to see the job while untilOver waits (the terminal's status line): each
 * node-side wait then lasts at most `everyS` (the first one second), and `onProbe` hears the
 * probe that ends it while the job is not over. The wait's own probe, no extra round trip.
 */
export interface WaitLook {
  everyS: number;
  onProbe(p: Probe): void | Promise<void>;
}

/**
 * Blocks on a connection until the job in `dir` is over (its supervisor let go of the lock and
 * a probe confirms it) and returns that probe; null when `signal` aborted. A dropped link
 * rejects (NodeUnreachableError), so a NodeLink can resume it. Each wait on the node is bounded;
 * with `stall`, a supervisor still alive past the job's deadline is stalled (stopped, stuck):
 * the job is ended on the node and the probe carries `stalled` for its verdict. With `look`,
 * the waits are shorter and each probe on the way is handed to it.
 */
export async function untilOver(
  t: Transport,
  dir: string,
  launchBootId: string | null,
  signal?: AbortSignal,
  stall?: StallWatch | LateStallWatch,
  look?: WaitLook,
): Promise<EndProbe | null> {
  const late = stall && 'next' in stall ? stall : undefined;
  let watch = stall && 'next' in stall ? undefined : stall;
  let gradingSeen = false;
  for (let round = 0; ; round++) {
    let chunk = look ? Math.min(WAIT_CHUNK_S, round === 0 ? 1 : look.everyS) : WAIT_CHUNK_S;
    // a queued job: look again soon, to start its stall watch when it starts
    if (late && !watch) chunk = Math.min(chunk, late.everyS);
    const left = watch ? (watch.deadlineMs - watch.now()) / 1000 : chunk;
    const p = await waitForEnd(t, dir, signal, Math.min(chunk, Math.max(1, left + 1)));
    if (p === null || signal?.aborted) return null;
    if (isOver(p, launchBootId)) return p;
    await look?.onProbe(p);
    if (late && !watch) watch = await late.next(p);
    if (watch?.gradingS !== undefined && !gradingSeen && p.status?.state === 'grading') {
      gradingSeen = true;
      watch = { ...watch, deadlineMs: Math.max(watch.deadlineMs, watch.now() + watch.gradingS * 1000) };
    }
    if (watch && watch.now() > watch.deadlineMs) {
      const stop = await stopStalled(t, dir, watch.jobId);
      return {
        ...p,
        stalled: {
          deadlineMs: watch.deadlineMs,
          atMs: watch.now(),
          supervisor: stop.supervisor,
          killed: stop.killed,
          released: stop.released,
          timeoutS: watch.timeoutS,
        },
      };
    }
    await sleep(200, undefined, { signal }).catch(() => undefined);
  }
}
