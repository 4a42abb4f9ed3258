/**
 * The job state machine and a job's times. Pure: each function takes a job and returns a new one.
 *
 * `startedAt` and `endedAt` are the supervisor's own measurements (status.json `startedAtMs`,
 * `endedAtMs`, node clock), never the moment a gpuq command noticed a change: those moments are
 * the `history` entries. So every command computes the same duration from the same two times.
 */
import type { HistoryEntry, Job, JobState, Verdict } from './types.js';

const NEXT: Record<JobState, readonly JobState[]> = {
  pending: ['queued', 'running', 'done'],
  queued: ['running', 'done'],
  running: ['grading', 'done'],
  grading: ['done'],
  done: [],
};

/** Whether the contract's lifecycle allows moving from one state to another. */
export function canMove(from: JobState, to: JobState): boolean {
  return NEXT[from].includes(to);
}

/**
 * Moves a job to a new state and records when gpuq noticed it in the history; refuses illegal
 * moves. It leaves `startedAt`/`endedAt` alone: those come from the supervisor (withSupervisorTimes).
 */
export function moveTo(job: Job, to: JobState, at: string, note: string | null = null): Job {
  if (job.state === to) return job;
  if (!canMove(job.state, to)) throw new Error(`job ${job.id}: cannot move from ${job.state} to ${to}`);
  const entry: HistoryEntry = { state: to, at, note };
  return { ...job, state: to, history: [...job.history, entry] };
}

/** Ends a job with its verdict (the only way a job reaches `done`). */
export function finish(job: Job, verdict: Verdict, at: string): Job {
  const done = moveTo(job, 'done', at, verdict.summary);
  return { ...done, verdict };
}

/** Whether a job still needs watching (anything but done). */
export function isActive(job: Job): boolean {
  return job.state !== 'done';
}

// ms since the epoch that a node's clock can plausibly give: after 2001-09-09, before 2286.
const MIN_EPOCH_MS = 1e12;
const MAX_EPOCH_MS = 1e13;

/** A time from status.json (job-controlled where there is no boundary) as ms, or null when it is not one. */
function epochMs(value: unknown): number | null {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= MIN_EPOCH_MS && value < MAX_EPOCH_MS
    ? value
    : null;
}

/** What the supervisor measured: its start, and the end of the job's main process (or null). */
export interface SupervisorTimes {
  startedAtMs?: unknown;
  endedAtMs?: unknown;
}

/**
 * Sets a job's `startedAt` and `endedAt` from the supervisor's own times (node clock), checked
 * and bounded: a value that is not a plausible time is ignored, and an end before the start is
 * taken as the start, so `startedAt` never comes after `endedAt`. Called at launch (the start)
 * and when the verdict is recorded (both).
 */
export function withSupervisorTimes(job: Job, times: SupervisorTimes | null | undefined): Job {
  if (!times) return job;
  const start = epochMs(times.startedAtMs) ?? (job.startedAt ? epochMs(Date.parse(job.startedAt)) : null);
  if (start === null) return job;
  const rawEnd = epochMs(times.endedAtMs);
  const end = rawEnd === null ? null : Math.max(start, rawEnd);
  return {
    ...job,
    startedAt: new Date(start).toISOString(),
    endedAt: end === null ? job.endedAt : new Date(end).toISOString(),
  };
}

/**
 * How long a job ran, in ms, from its supervisor's start to its end; for a job still running,
 * to `nowMs` (the supervisor's start to now). Null when it never started, or when it is done
 * and its supervisor recorded no end (a lost node). The one duration every command prints.
 */
export function jobDurationMs(job: Pick<Job, 'startedAt' | 'endedAt' | 'state'>, nowMs: number): number | null {
  const start = job.startedAt ? Date.parse(job.startedAt) : Number.NaN;
  if (!Number.isFinite(start)) return null;
  const end = job.endedAt ? Date.parse(job.endedAt) : job.state === 'done' ? Number.NaN : nowMs;
  if (!Number.isFinite(end)) return null;
  return Math.max(0, end - start);
}

/** When gpuq first noticed the job running (its history, client clock), or null. */
export function noticedRunningAt(job: Pick<Job, 'history'>): string | null {
  return job.history.find((h) => h.state === 'running')?.at ?? null;
}
