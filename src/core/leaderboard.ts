/**
 * `gpuq results --competition NAME`: which jobs a competition's leaderboard shows, in which order,
 * and which of them were graded against other data or answers than the newest grading. Pure.
 *
 * A job counts by its newest grading (the last of `job.gradings`). Graded jobs (class succeeded)
 * come first, best score first by the metric's direction, ties broken by the earlier grading (the
 * one that got there first), then by id; a graded job without a score comes after every score.
 * With `all`, jobs whose newest grading was rejected or failed follow, newest first.
 */
import { type Grading, scoreText } from './grading.js';
import type { Job } from './types.js';

export type { Grading };

/** Which fingerprint of a row differs from the reference grading's. */
export type Fingerprint = 'data' | 'answers';

/** What the ordering needs of an entry. */
export interface Rankable {
  id: string;
  class: Grading['class'];
  score: number | null;
  /** When the grading ended (ISO 8601). */
  at: string;
}

/** One line of the leaderboard (the `--json` shape of `gpuq results --competition`). */
export interface BoardRow {
  /** 1, 2, … among graded jobs; null for a rejected or failed grading. */
  rank: number | null;
  id: string;
  name: string;
  node: string;
  class: Grading['class'];
  cause: string | null;
  score: number | null;
  metrics: Grading['metrics'];
  /** When the newest grading ended. */
  at: string;
  dataFingerprint: string | null;
  answersFingerprint: string | null;
  /** How many times the job was graded. */
  gradings: number;
  /** Fingerprints that differ from the reference grading's: empty when comparable. */
  notComparable: Fingerprint[];
}

export interface Board {
  competition: string;
  higherIsBetter: boolean;
  /** The grading the others are compared with (the newest graded one), or null for an empty board. */
  reference: { id: string; at: string; dataFingerprint: string | null; answersFingerprint: string | null } | null;
  rows: BoardRow[];
}

/** A usable score: a finite number, else null. */
function scoreOf(e: Rankable): number | null {
  return typeof e.score === 'number' && Number.isFinite(e.score) ? e.score : null;
}

/** An ISO time as milliseconds; an unreadable one sorts as the latest. */
function timeOf(e: Rankable): number {
  const ms = Date.parse(e.at);
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
}

function byId(a: Rankable, b: Rankable): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * The leaderboard's order as a comparator: graded before rejected and failed; among graded, a
 * score before none, the better score first (`higherIsBetter`), then the earlier grading, then
 * the id; among the others, the newer grading first, then the id. Exported so the order can be
 * tested on its own.
 */
export function compareEntries(a: Rankable, b: Rankable, higherIsBetter: boolean): number {
  const ga = a.class === 'succeeded';
  const gb = b.class === 'succeeded';
  if (ga !== gb) return ga ? -1 : 1;
  if (!ga) {
    const ta = timeOf(a);
    const tb = timeOf(b);
    if (ta !== tb) return ta > tb ? -1 : 1;
    return byId(a, b);
  }
  const sa = scoreOf(a);
  const sb = scoreOf(b);
  if (sa === null || sb === null) {
    if (sa !== sb) return sa === null ? 1 : -1;
  } else if (sa !== sb) return (higherIsBetter ? sb - sa : sa - sb) < 0 ? -1 : 1;
  const ta = timeOf(a);
  const tb = timeOf(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  return byId(a, b);
}

/** A copy of `entries` in the leaderboard's order (compareEntries). */
export function orderEntries<T extends Rankable>(entries: readonly T[], higherIsBetter: boolean): T[] {
  return [...entries].sort((a, b) => compareEntries(a, b, higherIsBetter));
}

/**
 * The grading every row is compared with: the newest graded one (class succeeded), or the
 * newest of any class when none was graded. Null for no entries.
 */
export function referenceOf<T extends Rankable>(entries: readonly T[]): T | null {
  const pick = (xs: readonly T[]) =>
    xs.reduce<T | null>((best, e) => {
      if (best === null) return e;
      const te = timeOf(e);
      const tb = timeOf(best);
      return te > tb || (te === tb && byId(e, best) > 0) ? e : best;
    }, null);
  return pick(entries.filter((e) => e.class === 'succeeded')) ?? pick(entries);
}

/**
 * The leaderboard of `competition` from the ledger's jobs: each job that has a grading and that
 * competition, by its newest grading, in compareEntries' order (rejected and failed gradings only
 * with `all`), each marked with the fingerprints that differ from the reference grading's.
 */
export function leaderboard(
  jobs: readonly Job[],
  competition: string,
  opts: { higherIsBetter: boolean; all: boolean },
): Board {
  const entries = jobs.flatMap((job) => {
    const g = job.competition === competition ? job.gradings?.[job.gradings.length - 1] : undefined;
    if (!g || (!opts.all && g.class !== 'succeeded')) return [];
    return [{ id: job.id, class: g.class, score: g.score, at: g.at, job, grading: g }];
  });
  const ordered = orderEntries(entries, opts.higherIsBetter);
  const ref = referenceOf(entries);
  let rank = 0;
  const rows = ordered.map(({ job, grading: g }): BoardRow => {
    const notComparable: Fingerprint[] = [];
    if (ref && g.dataFingerprint !== ref.grading.dataFingerprint) notComparable.push('data');
    if (ref && g.answersFingerprint !== ref.grading.answersFingerprint) notComparable.push('answers');
    return {
      rank: g.class === 'succeeded' ? ++rank : null,
      id: job.id,
      name: job.name,
      node: job.node,
      class: g.class,
      cause: g.cause,
      score: g.score,
      metrics: g.metrics,
      at: g.at,
      dataFingerprint: g.dataFingerprint,
      answersFingerprint: g.answersFingerprint,
      gradings: job.gradings?.length ?? 0,
      notComparable,
    };
  });
  return {
    competition,
    higherIsBetter: opts.higherIsBetter,
    reference: ref
      ? {
          id: ref.id,
          at: ref.at,
          dataFingerprint: ref.grading.dataFingerprint,
          answersFingerprint: ref.grading.answersFingerprint,
        }
      : null,
    rows,
  };
}

/**
 * A score as the leaderboard and `results` show it: core/grading's scoreText (up to 6 significant
 * digits, as `list` and `show` print it), "-" for none. `--json` keeps the exact number.
 */
export function formatScore(score: number | null): string {
  if (score === null || !Number.isFinite(score)) return '-';
  return scoreText(score);
}
