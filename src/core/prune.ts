/**
 * Which jobs `gpuq prune` removes: pure selection over the ledger's jobs. Only finished jobs
 * are ever candidates; a job pending, queued, running or grading is never one.
 */
import type { Job } from './types.js';

/** The criteria: at least one of them is given. */
export interface PruneCriteria {
  /** Finished more than this long ago (ms); null: any age. */
  olderThanMs: number | null;
  /** The newest N finished jobs are kept whatever their age; null: none kept for that reason. */
  keep: number | null;
  nowMs: number;
}

/** When a finished job ended, for its age: its end, else its last recorded change, else its creation. */
export function endedAtMs(job: Job): number {
  for (const t of [job.endedAt, job.history.at(-1)?.at, job.createdAt]) {
    const ms = t ? Date.parse(t) : Number.NaN;
    if (Number.isFinite(ms)) return ms;
  }
  return 0;
}

/**
 * The finished jobs that go, newest first: with both criteria, a job goes only when both say so
 * (older than `olderThanMs`, and not among the newest `keep`); with one, when that one does.
 * Also counts the jobs still active, which are never selected.
 */
export function selectPrunable(jobs: readonly Job[], c: PruneCriteria): { selected: Job[]; active: number } {
  const done = jobs
    .filter((j) => j.state === 'done')
    .sort((a, b) => endedAtMs(b) - endedAtMs(a) || (a.id < b.id ? -1 : 1));
  const selected = done.filter(
    (j, i) => (c.keep === null || i >= c.keep) && (c.olderThanMs === null || c.nowMs - endedAtMs(j) > c.olderThanMs),
  );
  return { selected, active: jobs.length - done.length };
}
