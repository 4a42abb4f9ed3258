/**
 * `gpuq diagnose` and the peaks of `gpuq show`: one connection to the job's node reads the job
 * folder (status, peaks, stderr tail) and, for diagnose, the node's state where the job ran
 * (disk, inodes, memory, load, GPUs). A job found over on the way gets its verdict recorded.
 */
import { NodeUnreachableError } from '../core/errors.js';
import { formatBytes, formatPercent } from '../core/format.js';
import { type GraderReport, graderReport } from '../core/grading.js';
import { isActive, jobDurationMs, withSupervisorTimes } from '../core/job.js';
import { jobFigures, peaksAgainstLimits, type Peak } from '../core/peaks.js';
import { durationText, sampleLine } from '../core/present.js';
import { stderrLines } from '../core/stderr-patterns.js';
import type { Job, Limits, Sample, Verdict } from '../core/types.js';
import type { NodeStatus } from '../node/node-status.js';
import { probeJob, readNodeStatus, type Probe } from '../node/protocol.js';
import type { Transport } from '../transport/transport.js';
import { bounded, connectBounded } from './connect.js';
import type { AppContext } from './context.js';
import { settle } from './job-link.js';
import { findJob } from './jobs.js';

/** How many stderr lines a diagnosis quotes. */
export const DIAGNOSE_STDERR_LINES = 20;

/** What `gpuq diagnose` prints, as data (`--json` prints exactly this). */
export interface Diagnosis {
  id: string;
  name: string;
  node: string;
  state: Job['state'];
  /** The contract's verdict, or null while the job has none (still running, never started). */
  verdict: Verdict | null;
  /** One sentence: the verdict's summary, or where a job without one stands. */
  summary: string;
  evidence: string[];
  limits: Limits;
  /**
   * Peaks against limits: those recorded with the verdict (as every command prints them), else,
   * for a job still running or recorded before peaks were, from the job folder's files.
   */
  peaks: Peak[];
  /** From the supervisor's start to its end (to now while running), ms; null when unknown. */
  durationMs: number | null;
  /** A job still running: its latest resource sample, and that sample in words. */
  current: { sample: Sample; text: string } | null;
  /** The last lines of stderr.log (cleaned of colours and progress-bar redraws). */
  stderrTail: string[];
  folder: { dir: string; exists: boolean } | null;
  /** The node where the job ran; `status` null when it could not be read. */
  nodeFacts: { reachable: boolean; error: string | null; status: NodeStatus | null };
  hints: string[];
  /** What the diagnosis could not see, and why. */
  notes: string[];
  /** The newest grading's grader side (issue 13), where the job folder holds one; else null. */
  grading: GraderReport | null;
}

/** The result of reading one job's folder: the job (verdict recorded if it was found over) and the probe. */
export interface JobReading {
  job: Job;
  probe: Probe | null;
  /** Why the node could not be read, or null. */
  error: string | null;
}

/** Why something failed, without repeating "node X is unreachable" around it. */
function message(e: unknown): string {
  if (e instanceof NodeUnreachableError) return e.cause_;
  return e instanceof Error ? e.message : String(e);
}

/**
 * Reads a job's folder over an open transport; a job found over is classified and recorded
 * (as `wait` would), so a diagnosis never shows a finished job as running.
 */
async function readJob(ctx: AppContext, t: Transport, job: Job): Promise<JobReading> {
  const remote = job.remote;
  if (!remote) return { job, probe: null, error: null };
  const probe = await probeJob(t, remote.dir);
  return { job: await settle(ctx, job, probe, t), probe, error: null };
}

/**
 * Reads a job's folder within `timeoutMs` (connect included) for `gpuq show`: the job as
 * refreshed and its peaks against limits; `peaks` is null when the folder could not be read.
 */
export async function readPeaks(
  ctx: AppContext,
  job: Job,
  timeoutMs: number,
): Promise<{ job: Job; peaks: Peak[] | null; error: string | null }> {
  const node = ctx.config.nodes[job.node];
  if (!job.remote || !node) return { job, peaks: null, error: null };
  let transport: Transport | null = null;
  const work = (async () => {
    transport = await connectBounded(ctx, node);
    return readJob(ctx, transport, job);
  })();
  try {
    // One slow node cannot make `show` slow.
    const r = await bounded(
      work,
      timeoutMs,
      () => undefined,
      () => new Error(`no answer within ${timeoutMs / 1000}s while reading job ${job.id} on node ${job.node}`),
    );
    if (r.job.usage != null) return { job: r.job, peaks: jobFigures(r.job, ctx.now().getTime()).peaks, error: null };
    if (!r.probe || r.probe.missing) return { job: r.job, peaks: null, error: null };
    return {
      job: r.job,
      peaks: peaksAgainstLimits({
        monitor: r.probe.monitor,
        status: r.probe.status,
        limits: r.job.limits,
        nowMs: ctx.now().getTime(),
      }),
      error: null,
    };
  } catch (e) {
    return { job, peaks: null, error: message(e) };
  } finally {
    // A connection still opening when the time ran out is closed once it opens.
    work
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => void (transport as Transport | null)?.close());
  }
}

/** The last `n` non-trailing-blank lines of a stderr tail, as a person reads them. */
export function lastStderrLines(tail: string, n = DIAGNOSE_STDERR_LINES): string[] {
  const lines = stderrLines(tail);
  while (lines.length > 0 && (lines[lines.length - 1] as string).trim() === '') lines.pop();
  return lines.slice(-n);
}

/** Below this share of free disk (or inodes) the node's state is worth a hint of its own. */
const LOW_FREE = 0.05;
const LOW_FREE_BYTES = 1024 ** 3;

/**
 * Warnings about the node itself where the job ran: nearly full disk or inodes, little memory
 * available, a load far above its cores. Each one sentence with what to do.
 */
export function nodeFactHints(s: NodeStatus, node: string): string[] {
  const out: string[] = [];
  const at = s.diskPath ? ` at ${s.diskPath}` : '';
  if (
    s.disk &&
    s.disk.totalBytes > 0 &&
    (s.disk.freeBytes < LOW_FREE * s.disk.totalBytes || s.disk.freeBytes < LOW_FREE_BYTES)
  ) {
    out.push(
      `node ${node} has only ${formatBytes(s.disk.freeBytes)} of disk free${at}: ` +
        `delete old job folders and checkpoints there before resubmitting`,
    );
  }
  if (s.inodes && s.inodes.total > 0 && s.inodes.free < LOW_FREE * s.inodes.total) {
    out.push(
      `node ${node} has only ${s.inodes.free} inodes free${at} ` +
        `(${formatPercent(s.inodes.free / s.inodes.total)}): many small files fill it; ` +
        `pack them into archives or shards`,
    );
  }
  if (
    s.memory &&
    s.memory.availableBytes !== null &&
    s.memory.totalBytes > 0 &&
    s.memory.availableBytes < LOW_FREE * s.memory.totalBytes
  ) {
    out.push(
      `node ${node} has only ${formatBytes(s.memory.availableBytes)} of memory available now: other jobs hold the rest`,
    );
  }
  if (s.load && s.cpus && s.load[0] > 2 * s.cpus) {
    out.push(
      `node ${node} is overloaded (load ${s.load[0].toFixed(2)} on ${s.cpus} cores): ` +
        `expect slow runs, or pick another node with --node`,
    );
  }
  return out;
}

/** The sentence for a job without a verdict. */
function pendingSummary(job: Job, probe: Probe | null, now: Date): string {
  if (job.state === 'pending' || job.state === 'queued')
    return `Job ${job.id} is ${job.state} and has not started on node ${job.node} yet.`;
  // As every command counts it: from the supervisor's start (its status.json, else the ledger's) to now.
  const startedAtMs = probe?.status?.startedAtMs;
  const ms = jobDurationMs(
    startedAtMs ? withSupervisorTimes(job, { startedAtMs, endedAtMs: null }) : job,
    now.getTime(),
  );
  const since = ms !== null ? ` for ${durationText(ms)}` : '';
  return (
    `Job ${job.id} is still ${job.state === 'grading' ? 'being graded' : 'running'}${since} ` +
    `on node ${job.node}; these are its peaks so far.`
  );
}

/**
 * Diagnoses one job: its verdict (recorded now if the job turned out to be over), evidence,
 * peaks against limits, the last stderr lines, the node's state where it ran, and hints.
 * An unreachable node still yields what the ledger knows, with a note saying what is missing.
 */
export async function diagnoseJob(ctx: AppContext, id: string): Promise<Diagnosis> {
  let job = await findJob(ctx, id);
  const notes: string[] = [];
  let probe: Probe | null = null;
  let status: NodeStatus | null = null;
  let reachError: string | null = null;
  const node = ctx.config.nodes[job.node];

  if (!node) {
    reachError = `node "${job.node}" is not in the config any more`;
  } else if (job.remote) {
    let t: Transport | null = null;
    try {
      t = await connectBounded(ctx, node);
      const dir = job.remote.dir;
      const [reading, facts] = await Promise.allSettled([readJob(ctx, t, job), readNodeStatus(t, dir, true)]);
      if (reading.status === 'fulfilled') {
        job = reading.value.job;
        probe = reading.value.probe;
      } else {
        notes.push(`could not read the job folder: ${message(reading.reason)}`);
      }
      if (facts.status === 'fulfilled') status = facts.value;
      else notes.push(`could not read the node's state: ${message(facts.reason)}`);
    } catch (e) {
      reachError = message(e);
    } finally {
      await t?.close();
    }
  }
  if (reachError)
    notes.push(
      `node ${job.node} could not be reached (${reachError}): no logs, peaks or node state, only what the ledger holds`,
    );
  if (probe?.missing)
    notes.push(`the job folder ${job.remote?.dir ?? ''} is gone from node ${job.node}: no logs or peaks are left`);
  if (!job.remote && reachError === null)
    notes.push('the job never started on a node, so there is no job folder to read');

  const folderThere = probe !== null && !probe.missing;
  const assigned = (status?.gpus ?? []).filter((g) => job.gpus.includes(g.index));
  const gpuTotalBytes =
    assigned.length > 0 && assigned.every((g) => g.memoryTotalBytes !== null)
      ? assigned.reduce((n, g) => n + (g.memoryTotalBytes ?? 0), 0)
      : null;
  const figures = jobFigures(job, ctx.now().getTime());
  const peaks = figures.peaks
    ? figures.peaks
    : folderThere
      ? peaksAgainstLimits({
          monitor: probe?.monitor ?? null,
          status: probe?.status ?? null,
          limits: job.limits,
          nowMs: ctx.now().getTime(),
          gpuTotalBytes,
        })
      : [];
  const latest = isActive(job) ? probe?.recentSamples.at(-1) : undefined;
  const verdict = job.verdict;
  const hints = verdict
    ? [...verdict.hints]
    : isActive(job)
      ? [`follow it live with gpuq watch ${job.id}, or stop it with gpuq cancel ${job.id}`]
      : [];
  if (status) hints.push(...nodeFactHints(status, job.node));

  return {
    id: job.id,
    name: job.name,
    node: job.node,
    state: job.state,
    verdict,
    summary: verdict ? verdict.summary : pendingSummary(job, probe, ctx.now()),
    evidence: verdict ? verdict.evidence : [],
    limits: job.limits,
    peaks,
    durationMs: figures.durationMs,
    current: latest ? { sample: latest, text: sampleLine(latest, job.limits) } : null,
    stderrTail: folderThere ? lastStderrLines(probe?.stderrTail ?? '') : [],
    folder: job.remote ? { dir: job.remote.dir, exists: folderThere } : null,
    nodeFacts: { reachable: reachError === null && node !== undefined, error: reachError, status },
    hints,
    notes,
    // only a grading the ledger recorded (a job without one could have planted the folder)
    grading: folderThere && probe?.grading && (job.gradings?.length ?? 0) > 0 ? graderReport(probe.grading) : null,
  };
}
