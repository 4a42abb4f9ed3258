/**
 * core/stats.ts: the aggregation of `gpuq stats`, over hand-made jobs (no process): period,
 * counts by verdict class and cause, by node and competition, active states, percentiles.
 */
import { describe, expect, it } from 'vitest';
import { builtinLimits } from '../../src/core/limits.js';
import { computeStats, durationsOf, percentile } from '../../src/core/stats.js';
import { type Job, type JobState, VERDICT_CLASSES, type VerdictClass } from '../../src/core/types.js';

const T0 = Date.parse('2026-01-10T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

let n = 0;
/** A job created `ageS` seconds before T0 that ran `ranS` seconds (null: never started). */
function job(
  o: {
    state?: JobState;
    cls?: VerdictClass;
    cause?: string | null;
    node?: string;
    competition?: string | null;
    ageS?: number;
    ranS?: number | null;
    ended?: boolean;
  } = {},
): Job {
  const state = o.state ?? 'done';
  const created = T0 - (o.ageS ?? 60) * 1000;
  const ranS = o.ranS === undefined ? 10 : o.ranS;
  const started = ranS === null ? null : created + 1000;
  const ended = started === null || state !== 'done' || o.ended === false ? null : started + (ranS as number) * 1000;
  return {
    id: `j${String(n++).padStart(7, '0')}`,
    name: 'x.py',
    file: '/x.py',
    node: o.node ?? 'a',
    gpus: [],
    competition: o.competition ?? null,
    state,
    isolation: 'ulimit',
    image: null,
    limits: builtinLimits(),
    env: {},
    args: [],
    createdAt: iso(created),
    startedAt: started === null ? null : iso(started),
    endedAt: ended === null ? null : iso(ended),
    history: [{ state: 'pending', at: iso(created), note: null }],
    remote: null,
    verdict:
      state === 'done'
        ? {
            class: o.cls ?? 'succeeded',
            cause: o.cause ?? null,
            exitCode: 0,
            signal: null,
            timedOut: false,
            summary: 's',
            evidence: [],
            hints: [],
          }
        : null,
  };
}

describe('percentile (nearest rank)', () => {
  it('is null on nothing and the value itself on one', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([7], 50)).toBe(7);
    expect(percentile([7], 90)).toBe(7);
    expect(percentile([7], 100)).toBe(7);
  });
  it('takes the ceil(p·n)-th value', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4, 5], 50)).toBe(3);
    const ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(percentile(ten, 90)).toBe(9);
    expect(percentile(ten, 91)).toBe(10);
    expect(percentile(ten, 100)).toBe(10);
    expect(percentile(ten, 1)).toBe(1);
    expect(percentile(ten, 0)).toBe(1);
  });
});

describe('durationsOf', () => {
  it('uses finished jobs with a duration only (never started, lost without an end, active: left out)', () => {
    const d = durationsOf(
      [
        job({ ranS: 30 }),
        job({ ranS: 10 }),
        job({ ranS: 20 }),
        job({ ranS: null, cls: 'failed' }),
        job({ ended: false, cls: 'lost' }),
        job({ state: 'running', ranS: 999 }),
      ],
      T0,
    );
    expect(d).toEqual({ count: 3, p50Ms: 20_000, p90Ms: 30_000, maxMs: 30_000 });
  });
  it('is all null over no finished job', () => {
    expect(durationsOf([job({ state: 'queued', ranS: null })], T0)).toEqual({
      count: 0,
      p50Ms: null,
      p90Ms: null,
      maxMs: null,
    });
  });
});

describe('computeStats', () => {
  it('of no jobs: zeros and empty lists', () => {
    const s = computeStats([], { sinceMs: null, nowMs: T0 });
    expect(s).toEqual({
      since: null,
      until: iso(T0),
      jobs: 0,
      done: 0,
      active: { pending: 0, queued: 0, running: 0, grading: 0 },
      verdicts: [],
      nodes: [],
      competitions: [],
      durations: { count: 0, p50Ms: null, p90Ms: null, maxMs: null },
    });
  });

  it('counts classes in the contract order, causes most frequent first and the null cause last', () => {
    const jobs = [
      job({ cls: 'timeout' }),
      job({ cls: 'failed', cause: 'syntax_error' }),
      job({ cls: 'failed', cause: 'missing_module' }),
      job({ cls: 'failed', cause: 'missing_module' }),
      job({ cls: 'failed' }),
      job({ cls: 'succeeded' }),
      job({ cls: 'limit', cause: 'pids' }),
      job({ cls: 'limit', cause: 'cpu_time' }),
    ];
    const s = computeStats(jobs, { sinceMs: null, nowMs: T0 });
    expect(s.verdicts).toEqual([
      { class: 'succeeded', count: 1, causes: [{ cause: null, count: 1 }] },
      {
        class: 'failed',
        count: 4,
        causes: [
          { cause: 'missing_module', count: 2 },
          { cause: 'syntax_error', count: 1 },
          { cause: null, count: 1 },
        ],
      },
      { class: 'timeout', count: 1, causes: [{ cause: null, count: 1 }] },
      {
        class: 'limit',
        count: 2,
        causes: [
          { cause: 'cpu_time', count: 1 },
          { cause: 'pids', count: 1 },
        ],
      },
    ]);
    expect(s.verdicts.reduce((a, v) => a + v.count, 0)).toBe(s.done);
  });

  it('every verdict class is counted', () => {
    const s = computeStats(
      VERDICT_CLASSES.map((cls) => job({ cls })),
      { sinceMs: null, nowMs: T0 },
    );
    expect(s.verdicts.map((v) => v.class)).toEqual([...VERDICT_CLASSES]);
    expect(s.done).toBe(VERDICT_CLASSES.length);
  });

  it('counts active jobs per state, apart from the verdicts, and includes them in node and competition totals', () => {
    const jobs = [
      job({ state: 'pending', ranS: null }),
      job({ state: 'queued', ranS: null }),
      job({ state: 'running' }),
      job({ state: 'running', node: 'b' }),
      job({ state: 'grading', competition: 'digits' }),
      job({ cls: 'oom', node: 'b', competition: 'digits' }),
    ];
    const s = computeStats(jobs, { sinceMs: null, nowMs: T0 });
    expect(s.jobs).toBe(6);
    expect(s.done).toBe(1);
    expect(s.active).toEqual({ pending: 1, queued: 1, running: 2, grading: 1 });
    expect(s.verdicts).toEqual([{ class: 'oom', count: 1, causes: [{ cause: null, count: 1 }] }]);
    expect(s.nodes.map((g) => [g.name, g.jobs, g.done, g.byClass])).toEqual([
      ['a', 4, 0, {}],
      ['b', 2, 1, { oom: 1 }],
    ]);
    expect(s.competitions.map((g) => [g.name, g.jobs, g.done])).toEqual([
      ['digits', 2, 1],
      [null, 4, 0],
    ]);
    // durations count finished jobs only, per group too
    expect(s.durations.count).toBe(1);
    expect(s.nodes[0]?.durations.count).toBe(0);
    expect(s.nodes[1]?.durations).toEqual({ count: 1, p50Ms: 10_000, p90Ms: 10_000, maxMs: 10_000 });
  });

  it('orders groups by jobs, then name; the jobs without a competition last whatever their number', () => {
    const jobs = [
      job({ node: 'zeta' }),
      job({ node: 'alpha' }),
      job({ node: 'mid' }),
      job({ node: 'mid' }),
      job({ competition: 'c2' }),
      job({ competition: 'c1' }),
    ];
    const s = computeStats(jobs, { sinceMs: null, nowMs: T0 });
    expect(s.nodes.map((g) => g.name)).toEqual(['a', 'mid', 'alpha', 'zeta']);
    expect(s.competitions.map((g) => g.name)).toEqual(['c1', 'c2', null]);
  });

  it('--since keeps the jobs created at or after the start; the period is in the result', () => {
    const jobs = [
      job({ ageS: 3600 * 24 * 8, cls: 'failed', ranS: 100 }),
      job({ ageS: 3600 * 24 * 7, cls: 'timeout', ranS: 50 }), // exactly at the start: in
      job({ ageS: 60, cls: 'succeeded', ranS: 5 }),
    ];
    const sinceMs = T0 - 7 * 86400 * 1000;
    const s = computeStats(jobs, { sinceMs, nowMs: T0 });
    expect(s.since).toBe(iso(sinceMs));
    expect(s.jobs).toBe(2);
    expect(s.verdicts.map((v) => v.class)).toEqual(['succeeded', 'timeout']);
    expect(s.durations).toEqual({ count: 2, p50Ms: 5_000, p90Ms: 50_000, maxMs: 50_000 });
    expect(computeStats(jobs, { sinceMs: T0, nowMs: T0 }).jobs).toBe(0);
  });

  it('leaves out a job whose creation time is unreadable when a period is asked for, not otherwise', () => {
    const bad = { ...job(), createdAt: 'not a time' };
    expect(computeStats([bad], { sinceMs: T0 - 1000, nowMs: T0 }).jobs).toBe(0);
    expect(computeStats([bad], { sinceMs: null, nowMs: T0 }).jobs).toBe(1);
  });

  it('percentiles over many jobs: p50, p90, max of 1..100 s', () => {
    const jobs = Array.from({ length: 100 }, (_, i) => job({ ranS: 100 - i }));
    const s = computeStats(jobs, { sinceMs: null, nowMs: T0 });
    expect(s.durations).toEqual({ count: 100, p50Ms: 50_000, p90Ms: 90_000, maxMs: 100_000 });
  });

  it('is plain JSON (what --json prints) and round-trips', () => {
    const s = computeStats([job({ cls: 'failed', cause: 'x', competition: 'c' })], { sinceMs: null, nowMs: T0 });
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });
});
