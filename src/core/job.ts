/**
 * The job state machine. Pure: each function takes a job and returns a new one.
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

/** Moves a job to a new state and records it in the history; refuses illegal moves. */
export function moveTo(job: Job, to: JobState, at: string, note: string | null = null): Job {
  if (job.state === to) return job;
  if (!canMove(job.state, to)) throw new Error(`job ${job.id}: cannot move from ${job.state} to ${to}`);
  const entry: HistoryEntry = { state: to, at, note };
  const next: Job = { ...job, state: to, history: [...job.history, entry] };
  if (to === 'running' && !next.startedAt) next.startedAt = at;
  if (to === 'done') next.endedAt = at;
  return next;
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
