/**
 * How gradings print (issue 13): the list's score cell, and the show page's score and gradings.
 * Pure string building; every text a grader wrote is printableLine()d and bounded again here.
 */
import { formatBytes, printableLine } from '../core/format.js';
import { scoreText } from '../core/grading.js';
import type { Job } from '../core/types.js';
import { paintState } from './render.js';
import type { Style } from './style.js';

/** The list's CAUSE cell for a graded job ("score 0.93"), or null when the job has no score. */
export function scoreCell(job: Job): string | null {
  return typeof job.score === 'number' && job.verdict?.class === 'succeeded' ? `score ${scoreText(job.score)}` : null;
}

/** "f1 0.5, n 3": a grading's metrics on one line, bounded. */
export function metricsText(metrics: Record<string, unknown> | null | undefined, max = 8): string {
  const entries = Object.entries(metrics ?? {});
  const shown = entries.slice(0, max).map(([k, v]) => `${printableLine(k)} ${valueText(v)}`);
  if (entries.length > max) shown.push(`… ${entries.length - max} more`);
  return shown.join(', ');
}

function valueText(v: unknown): string {
  if (typeof v === 'number') return scoreText(v);
  const t = printableLine(String(v));
  return t.length > 40 ? `${t.slice(0, 39)}…` : t;
}

/** A fingerprint shortened for a line ("sha256:1a2b3c4d5e6f"), "-" when there is none. */
export function shortFingerprint(fp: string | null): string {
  return fp ? fp.slice(0, 19) : '-';
}

/** The show page's lines about grading: the score and metrics, then every grading, oldest first. */
export function gradingLines(job: Job, style: Style): string[] {
  const c = style.c;
  const out: string[] = [];
  if (typeof job.score === 'number') {
    const m = metricsText(job.metrics);
    out.push(`${c.bold('Score')}      ${scoreText(job.score)}${m ? `  (${m})` : ''}`);
  }
  const gs = job.gradings ?? [];
  if (gs.length === 0) return out;
  out.push(`${c.bold('Gradings')}   (newest last; the newest decides the verdict)`);
  for (const [i, g] of gs.entries()) {
    const what = g.class === 'succeeded' && g.score !== null ? `score ${scoreText(g.score)}` : (g.cause ?? '');
    const exit = g.graderExit === null ? 'grader not run' : `grader exit ${g.graderExit}`;
    out.push(`  ${i + 1}  ${g.at}  ${paintState(style, g.class)}  ${what}  ${exit}`);
    if (g.message) out.push(`     message: ${printableLine(g.message)}`);
    const s = g.submission;
    if (s)
      out.push(
        `     submission ${formatBytes(s.bytes)}, ${printableLine(s.encoding)}${s.crlf ? ', CRLF' : ''}, sha256 ${printableLine(s.sha256).slice(0, 12)}`,
      );
    out.push(`     data ${shortFingerprint(g.dataFingerprint)}  answers ${shortFingerprint(g.answersFingerprint)}`);
  }
  return out;
}
