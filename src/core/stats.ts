/**
 * `gpuq stats`: counts and duration percentiles over the ledger's jobs, as plain data. Pure: the
 * jobs and the clock in, the figures out (the CLI prints them, or prints them as JSON).
 *
 * A job belongs to the period when it was created at or after `sinceMs`. Durations are the one
 * duration every command prints (job.ts jobDurationMs: the supervisor's start to its end) of the
 * finished jobs that have one; percentiles are nearest-rank (p50 of 1,2,3,4 is 2).
 */
import { jobDurationMs } from './job.js';
import { type Job, type JobState, VERDICT_CLASSES, type VerdictClass } from './types.js';

/** The period and the clock. */
export interface StatsOptions {
  /** Only jobs created at or after this time (ms since the epoch); null: every job. */
  sinceMs: number | null;
  nowMs: number;
}

/** Duration percentiles over a set of finished jobs (ms; null when none had a duration). */
export interface Durations {
  /** How many finished jobs had a duration. */
  count: number;
  p50Ms: number | null;
  p90Ms: number | null;
  maxMs: number | null;
}

/** One verdict class: its jobs, and how many had each cause (null: no finer cause). */
export interface ClassCount {
  class: VerdictClass;
  count: number;
  /** Most frequent first, then by name; the null cause last. */
  causes: Array<{ cause: string | null; count: number }>;
}

/** The jobs of one node or one competition. */
export interface GroupStats {
  /** The node's name, or the competition's (null: jobs without one). */
  name: string | null;
  jobs: number;
  /** Finished jobs, and their count per verdict class (classes with none left out). */
  done: number;
  byClass: Partial<Record<VerdictClass, number>>;
  durations: Durations;
}

/** Jobs not finished yet, per state. */
export type ActiveCounts = Record<Exclude<JobState, 'done'>, number>;

/** What `gpuq stats` reports (and prints as JSON). */
export interface Stats {
  /** The period: its start (ISO 8601 UTC) or null for all time, and now. */
  since: string | null;
  until: string;
  /** Jobs created in the period. */
  jobs: number;
  done: number;
  active: ActiveCounts;
  /** Finished jobs per verdict class, in the contract's order of classes; classes with none left out. */
  verdicts: ClassCount[];
  /** Most jobs first, then by name. */
  nodes: GroupStats[];
  /** Most jobs first, then by name; jobs without a competition under the name null, last. */
  competitions: GroupStats[];
  /** Over every finished job of the period. */
  durations: Durations;
}

/** The nearest-rank percentile `p` (0-100] of ascending `sorted` values; null when empty. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

/** p50, p90 and max of the durations of the finished jobs among `jobs`. */
export function durationsOf(jobs: readonly Job[], nowMs: number): Durations {
  const ms = jobs
    .filter((j) => j.state === 'done')
    .map((j) => jobDurationMs(j, nowMs))
    .filter((d): d is number => d !== null)
    .sort((a, b) => a - b);
  return { count: ms.length, p50Ms: percentile(ms, 50), p90Ms: percentile(ms, 90), maxMs: ms.at(-1) ?? null };
}

/** Whether a job was created in the period. */
function inPeriod(job: Job, sinceMs: number | null): boolean {
  if (sinceMs === null) return true;
  const t = Date.parse(job.createdAt);
  return Number.isFinite(t) && t >= sinceMs;
}

function groupBy(jobs: readonly Job[], keyOf: (j: Job) => string | null, nowMs: number): GroupStats[] {
  const groups = new Map<string | null, Job[]>();
  for (const j of jobs) {
    const k = keyOf(j);
    groups.set(k, [...(groups.get(k) ?? []), j]);
  }
  return [...groups.entries()]
    .map(([name, js]) => {
      const byClass: Partial<Record<VerdictClass, number>> = {};
      let done = 0;
      for (const j of js) {
        if (j.state !== 'done' || !j.verdict) continue;
        done++;
        byClass[j.verdict.class] = (byClass[j.verdict.class] ?? 0) + 1;
      }
      return { name, jobs: js.length, done, byClass, durations: durationsOf(js, nowMs) };
    })
    .sort(
      (a, b) =>
        (a.name === null ? 1 : 0) - (b.name === null ? 1 : 0) ||
        b.jobs - a.jobs ||
        String(a.name).localeCompare(String(b.name)),
    );
}

/** The counts and percentiles of the jobs created in the period. */
export function computeStats(all: readonly Job[], opts: StatsOptions): Stats {
  const jobs = all.filter((j) => inPeriod(j, opts.sinceMs));
  const active: ActiveCounts = { pending: 0, queued: 0, running: 0, grading: 0 };
  const perClass = new Map<VerdictClass, Map<string | null, number>>();
  let done = 0;
  for (const j of jobs) {
    if (j.state !== 'done') {
      active[j.state]++;
      continue;
    }
    done++;
    if (!j.verdict) continue;
    const causes = perClass.get(j.verdict.class) ?? new Map<string | null, number>();
    causes.set(j.verdict.cause, (causes.get(j.verdict.cause) ?? 0) + 1);
    perClass.set(j.verdict.class, causes);
  }
  const verdicts: ClassCount[] = VERDICT_CLASSES.filter((c) => perClass.has(c)).map((c) => {
    const causes = [...(perClass.get(c) as Map<string | null, number>).entries()]
      .map(([cause, count]) => ({ cause, count }))
      .sort(
        (a, b) =>
          (a.cause === null ? 1 : 0) - (b.cause === null ? 1 : 0) ||
          b.count - a.count ||
          String(a.cause).localeCompare(String(b.cause)),
      );
    return { class: c, count: causes.reduce((n, x) => n + x.count, 0), causes };
  });
  return {
    since: opts.sinceMs === null ? null : new Date(opts.sinceMs).toISOString(),
    until: new Date(opts.nowMs).toISOString(),
    jobs: jobs.length,
    done,
    active,
    verdicts,
    nodes: groupBy(jobs, (j) => j.node, opts.nowMs),
    competitions: groupBy(jobs, (j) => j.competition, opts.nowMs),
    durations: durationsOf(jobs, opts.nowMs),
  };
}
