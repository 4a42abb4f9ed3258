/**
 * core/prune.ts: which finished jobs `gpuq prune` selects (--older-than, --keep, both); active
 * jobs never.
 */
import { describe, expect, it } from 'vitest';
import { builtinLimits } from '../../src/core/limits.js';
import { endedAtMs, selectPrunable } from '../../src/core/prune.js';
import { JOB_STATES, type Job, type JobState } from '../../src/core/types.js';

const NOW = Date.parse('2026-01-10T00:00:00Z');
const DAY = 86400 * 1000;
const iso = (ms: number) => new Date(ms).toISOString();

/** A job `id` that ended `daysAgo` days before NOW (or, active, was created then). */
function job(id: string, daysAgo: number, state: JobState = 'done'): Job {
  const at = NOW - daysAgo * DAY;
  return {
    id,
    name: id,
    file: '/x.py',
    node: 'a',
    gpus: [],
    competition: null,
    state,
    isolation: 'ulimit',
    image: null,
    limits: builtinLimits(),
    env: {},
    args: [],
    createdAt: iso(at - 1000),
    startedAt: iso(at - 500),
    endedAt: state === 'done' ? iso(at) : null,
    history: [{ state: 'pending', at: iso(at - 1000), note: null }],
    remote: null,
    verdict: null,
  };
}

const ids = (jobs: Job[]) => jobs.map((j) => j.id);

describe('selectPrunable', () => {
  const jobs = [job('d1', 1), job('d5', 5), job('d10', 10), job('d40', 40), job('d2', 2)];

  it('--older-than: finished longer ago than the age, newest first', () => {
    expect(ids(selectPrunable(jobs, { olderThanMs: 3 * DAY, keep: null, nowMs: NOW }).selected)).toEqual([
      'd5',
      'd10',
      'd40',
    ]);
    expect(ids(selectPrunable(jobs, { olderThanMs: 100 * DAY, keep: null, nowMs: NOW }).selected)).toEqual([]);
  });

  it('--keep N: all but the newest N finished', () => {
    expect(ids(selectPrunable(jobs, { olderThanMs: null, keep: 2, nowMs: NOW }).selected)).toEqual([
      'd5',
      'd10',
      'd40',
    ]);
    expect(ids(selectPrunable(jobs, { olderThanMs: null, keep: 0, nowMs: NOW }).selected)).toHaveLength(5);
    expect(ids(selectPrunable(jobs, { olderThanMs: null, keep: 9, nowMs: NOW }).selected)).toEqual([]);
  });

  it('both: only what both allow (--keep protects the newest N whatever their age)', () => {
    expect(ids(selectPrunable(jobs, { olderThanMs: 7 * DAY, keep: 4, nowMs: NOW }).selected)).toEqual(['d40']);
    expect(ids(selectPrunable(jobs, { olderThanMs: 3 * DAY, keep: 4, nowMs: NOW }).selected)).toEqual(['d40']);
    expect(ids(selectPrunable(jobs, { olderThanMs: 20 * DAY, keep: 1, nowMs: NOW }).selected)).toEqual(['d40']);
  });

  it('never selects a job that is not finished, however old, and does not count it towards --keep', () => {
    const mixed = [
      ...JOB_STATES.filter((s) => s !== 'done').map((s) => job(`a-${s}`, 100, s)),
      job('new', 1),
      job('old', 50),
    ];
    const r = selectPrunable(mixed, { olderThanMs: null, keep: 1, nowMs: NOW });
    expect(ids(r.selected)).toEqual(['old']);
    expect(r.active).toBe(4);
    expect(ids(selectPrunable(mixed, { olderThanMs: DAY / 2, keep: null, nowMs: NOW }).selected)).toEqual([
      'new',
      'old',
    ]);
  });

  it('ages a job without an end by its last recorded change, else its creation', () => {
    const lost = {
      ...job('lost', 30),
      endedAt: null,
      history: [{ state: 'done' as const, at: iso(NOW - 20 * DAY), note: null }],
    };
    expect(endedAtMs(lost)).toBe(NOW - 20 * DAY);
    const bare = { ...lost, history: [], createdAt: iso(NOW - 25 * DAY) };
    expect(endedAtMs(bare)).toBe(NOW - 25 * DAY);
    expect(ids(selectPrunable([lost], { olderThanMs: 21 * DAY, keep: null, nowMs: NOW }).selected)).toEqual([]);
    expect(ids(selectPrunable([lost], { olderThanMs: 19 * DAY, keep: null, nowMs: NOW }).selected)).toEqual(['lost']);
  });
});
