import { describe, expect, it } from 'vitest';
import {
  compareEntries,
  formatScore,
  type Grading,
  leaderboard,
  orderEntries,
  type Rankable,
  referenceOf,
} from '../../src/core/leaderboard.js';
import { builtinLimits } from '../../src/core/limits.js';
import type { Job } from '../../src/core/types.js';

const T0 = Date.parse('2026-11-28T08:00:00Z');
const at = (min: number) => new Date(T0 + min * 60_000).toISOString();
const D1 = 'sha256:aaaaaaaaaaaaaaaaaaaa';
const D2 = 'sha256:bbbbbbbbbbbbbbbbbbbb';
const A1 = 'sha256:cccccccccccccccccccc';
const A2 = 'sha256:dddddddddddddddddddd';

function grading(o: Partial<Grading> & { min: number }): Grading {
  const { min, ...rest } = o;
  return {
    at: at(min),
    class: 'succeeded',
    cause: null,
    score: 0.5,
    metrics: {},
    message: null,
    graderExit: 42,
    dataFingerprint: D1,
    answersFingerprint: A1,
    submission: { bytes: 10, sha256: 'e'.repeat(64), crlf: false, encoding: 'utf-8' },
    ...rest,
  };
}

function job(id: string, gradings: Grading[] | undefined, competition: string | null = 'digits'): Job {
  return {
    id,
    name: `name-${id}`,
    file: '/x.py',
    node: 'local',
    gpus: [],
    competition,
    state: 'done',
    isolation: 'ulimit',
    image: null,
    limits: builtinLimits(),
    env: {},
    args: [],
    createdAt: at(-10),
    startedAt: at(-9),
    endedAt: at(-8),
    history: [],
    remote: null,
    verdict: null,
    gradings,
  };
}

const e = (id: string, score: number | null, min: number, cls: Rankable['class'] = 'succeeded'): Rankable => ({
  id,
  class: cls,
  score,
  at: at(min),
});
const ids = (xs: readonly { id: string }[]) => xs.map((x) => x.id);

/** Every ordering of xs (small arrays only). */
function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [[...xs]];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

describe('compareEntries / orderEntries', () => {
  const mixed = [
    e('mid', 0.5, 3),
    e('best-hi', 0.9, 5),
    e('low', 0.1, 1),
    e('none', null, 0),
    e('tie-late', 0.5, 4),
    e('tie-early', 0.5, 2),
    e('rej-old', null, 1, 'rejected'),
    e('fail-new', null, 9, 'grading_failed'),
    e('rej-new', 0.99, 8, 'rejected'),
  ];

  it('higher is better: best score first, ties by the earlier grading, no score after every score, then rejected and failed newest first', () => {
    expect(ids(orderEntries(mixed, true))).toEqual([
      'best-hi',
      'tie-early',
      'mid',
      'tie-late',
      'low',
      'none',
      'fail-new',
      'rej-new',
      'rej-old',
    ]);
  });

  it('lower is better: the lowest score first, the same tie and null rules', () => {
    expect(ids(orderEntries(mixed, false))).toEqual([
      'low',
      'tie-early',
      'mid',
      'tie-late',
      'best-hi',
      'none',
      'fail-new',
      'rej-new',
      'rej-old',
    ]);
  });

  it('is a total order: every input order gives the same result, in both directions', () => {
    const small = [
      e('a', 1, 2),
      e('b', 2, 2),
      e('c', null, 1),
      e('x', null, 5, 'rejected'),
      e('y', null, 5, 'grading_failed'),
    ];
    for (const dir of [true, false]) {
      const want = ids(orderEntries(small, dir));
      for (const p of permutations(small)) expect(ids(orderEntries(p, dir))).toEqual(want);
    }
    // Same score, same time: the id decides; the same entry compares equal.
    expect(ids(orderEntries([e('b', 1, 2), e('a', 1, 2)], true))).toEqual(['a', 'b']);
    expect(compareEntries(e('a', 1, 2), e('a', 1, 2), true)).toBe(0);
  });

  it('treats a non-finite score as none and an unreadable time as the latest', () => {
    expect(
      ids(orderEntries([e('nan', Number.NaN, 0), e('inf', Number.POSITIVE_INFINITY, 0), e('one', 1, 5)], true)),
    ).toEqual(['one', 'inf', 'nan']);
    expect(ids(orderEntries([e('one', -1, 0), e('inf', Number.NEGATIVE_INFINITY, 0)], false))).toEqual(['one', 'inf']);
    const bad: Rankable = { id: 'bad-time', class: 'succeeded', score: 1, at: 'yesterday' };
    expect(ids(orderEntries([bad, e('ok', 1, 100)], true))).toEqual(['ok', 'bad-time']);
  });

  it('negative scores and zero order as numbers', () => {
    expect(ids(orderEntries([e('z', 0, 1), e('n', -2, 1), e('p', 3, 1)], true))).toEqual(['p', 'z', 'n']);
    expect(ids(orderEntries([e('z', 0, 1), e('n', -2, 1), e('p', 3, 1)], false))).toEqual(['n', 'z', 'p']);
  });
});

describe('referenceOf', () => {
  it('is the newest graded entry, else the newest of any class, else null', () => {
    expect(referenceOf([e('old', 1, 1), e('new', 0, 5), e('newest-failed', null, 9, 'grading_failed')])?.id).toBe(
      'new',
    );
    expect(referenceOf([e('r', null, 1, 'rejected'), e('f', null, 4, 'grading_failed')])?.id).toBe('f');
    expect(referenceOf([e('a', 1, 3), e('b', 1, 3)])?.id).toBe('b');
    expect(referenceOf([])).toBeNull();
  });
});

describe('leaderboard', () => {
  const jobs = [
    job('j1', [grading({ min: 1, score: 0.7 })]),
    // regraded: the newest grading counts (0.2), not the first one (0.95)
    job('j2', [grading({ min: 2, score: 0.95 }), grading({ min: 6, score: 0.2 })]),
    job('j3', [grading({ min: 3, score: 0.9, dataFingerprint: D2 })]),
    job('j4', [grading({ min: 4, class: 'rejected', cause: 'submission_missing', score: null, submission: null })]),
    job('j5', [grading({ min: 5, class: 'grading_failed', cause: 'grader_error', score: null })]),
    job('j6', [grading({ min: 7, score: 0.8, answersFingerprint: A2, dataFingerprint: D2 })]),
    job('other', [grading({ min: 8, score: 1 })], 'other-comp'),
    job('never', undefined),
    job('empty', []),
    job('none', [grading({ min: 0, score: 0.99 })], null),
  ];

  it('lists graded jobs best first by the newest grading; --all adds rejected and failed after them', () => {
    const b = leaderboard(jobs, 'digits', { higherIsBetter: true, all: false });
    expect(b.rows.map((r) => [r.id, r.rank, r.score])).toEqual([
      ['j3', 1, 0.9],
      ['j6', 2, 0.8],
      ['j1', 3, 0.7],
      ['j2', 4, 0.2],
    ]);
    expect(b.rows.find((r) => r.id === 'j2')?.gradings).toBe(2);
    const all = leaderboard(jobs, 'digits', { higherIsBetter: true, all: true });
    expect(all.rows.map((r) => [r.id, r.rank, r.class, r.cause])).toEqual([
      ['j3', 1, 'succeeded', null],
      ['j6', 2, 'succeeded', null],
      ['j1', 3, 'succeeded', null],
      ['j2', 4, 'succeeded', null],
      ['j5', null, 'grading_failed', 'grader_error'],
      ['j4', null, 'rejected', 'submission_missing'],
    ]);
    const low = leaderboard(jobs, 'digits', { higherIsBetter: false, all: false });
    expect(ids(low.rows)).toEqual(['j2', 'j1', 'j6', 'j3']);
  });

  it('marks jobs graded against other data or answers than the newest graded job as not comparable', () => {
    const b = leaderboard(jobs, 'digits', { higherIsBetter: true, all: true });
    // The newest graded job is j6 (minute 7): data D2, answers A2.
    expect(b.reference).toEqual({ id: 'j6', at: at(7), dataFingerprint: D2, answersFingerprint: A2 });
    const nc = Object.fromEntries(b.rows.map((r) => [r.id, r.notComparable]));
    expect(nc).toEqual({
      j6: [],
      j3: ['answers'],
      j1: ['data', 'answers'],
      j2: ['data', 'answers'],
      j5: ['data', 'answers'],
      j4: ['data', 'answers'],
    });
    // A fingerprint that is missing differs from one that is there.
    const unknown = leaderboard(
      [job('a', [grading({ min: 1, dataFingerprint: null })]), job('b', [grading({ min: 2 })])],
      'digits',
      { higherIsBetter: true, all: false },
    );
    expect(unknown.rows.map((r) => [r.id, r.notComparable])).toEqual([
      ['a', ['data']],
      ['b', []],
    ]);
  });

  it('the same data everywhere: all comparable; no graded job: an empty board without a reference', () => {
    const same = leaderboard([job('a', [grading({ min: 1 })]), job('b', [grading({ min: 2, score: 1 })])], 'digits', {
      higherIsBetter: true,
      all: false,
    });
    expect(same.rows.every((r) => r.notComparable.length === 0)).toBe(true);
    const empty = leaderboard(jobs, 'nobody', { higherIsBetter: true, all: true });
    expect(empty).toEqual({ competition: 'nobody', higherIsBetter: true, reference: null, rows: [] });
    // Only failures, without --all: nothing; with it, the newest failure is the reference.
    const failed = [job('f', [grading({ min: 1, class: 'grading_failed', score: null })])];
    expect(leaderboard(failed, 'digits', { higherIsBetter: true, all: false }).rows).toEqual([]);
    expect(leaderboard(failed, 'digits', { higherIsBetter: true, all: true }).reference?.id).toBe('f');
  });
});

describe('formatScore', () => {
  it('prints up to 6 significant digits without trailing zeros', () => {
    expect(formatScore(0.953125)).toBe('0.953125');
    expect(formatScore(0.1234567)).toBe('0.123457');
    expect(formatScore(12.5)).toBe('12.5');
    expect(formatScore(0.5)).toBe('0.5');
    expect(formatScore(3)).toBe('3');
    expect(formatScore(-2)).toBe('-2');
    expect(formatScore(1.5e-9)).toBe('1.5e-9');
    expect(formatScore(1234567.5)).toBe('1234570');
    expect(formatScore(null)).toBe('-');
    expect(formatScore(Number.NaN)).toBe('-');
  });
});
