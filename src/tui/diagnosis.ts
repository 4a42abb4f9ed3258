/**
 * The text of the diagnosis panel (`d` in the live view), built from the verdict the ledger
 * holds: class, exit, summary, every piece of evidence and every hint, the limits in force and
 * the peaks the view saw. Pure; `gpuq diagnose ID` adds the node's side.
 */
import { formatBytes, formatPercent } from '../core/format.js';
import { jobFigures } from '../core/peaks.js';
import { durationText, exitText, limitsLine } from '../core/present.js';
import type { Job } from '../core/types.js';
import type { Peaks } from './model.js';

/** The full diagnosis as plain text, or a line saying there is none yet. */
export function diagnosisText(job: Job | null, peaks: Peaks | null = null): string {
  if (job === null || job.verdict === null) return 'No verdict yet: the diagnosis is ready once the job is done.';
  const v = job.verdict;
  const out: string[] = [];
  out.push(`Verdict: ${v.class}${v.cause ? ` (${v.cause})` : ''} · ${exitText(v)}`);
  out.push(v.summary);
  out.push('');
  out.push('Evidence:');
  out.push(...(v.evidence.length > 0 ? v.evidence.map((e) => `  - ${e}`) : ['  (none recorded)']));
  out.push('');
  out.push('What to do:');
  out.push(...(v.hints.length > 0 ? v.hints.map((h) => `  - ${h}`) : ['  (no suggestion)']));
  out.push('');
  out.push(`Limits: ${limitsLine(job.limits)}`);
  // The figures recorded with the verdict, as `gpuq show` and `gpuq diagnose` print them.
  const figures = jobFigures(job, Date.now());
  out.push(`Ran ${durationText(figures.durationMs)} (the supervisor's start to the program's end)`);
  if (figures.peaks !== null && figures.peaks.length > 0) {
    out.push('Peaks:', ...figures.peaks.map((p) => `  - ${p.text}`));
  } else if (peaks !== null) {
    const gpu = peaks.gpuMemBytes === null ? '' : `, GPU memory ${formatBytes(peaks.gpuMemBytes)}`;
    out.push(
      `Peaks sampled while watching: RSS ${formatBytes(peaks.rssBytes)}, ` +
        `CPU ${formatPercent(peaks.cpuPct / 100)}, processes and threads ${peaks.threads}, ` +
        `folder ${formatBytes(peaks.folderBytes)}${gpu}`,
    );
  }
  out.push(`Node ${job.node}, folder ${job.remote?.dir ?? '(never created)'}`);
  out.push('');
  out.push(`More (last log lines, node state): gpuq diagnose ${job.id}`);
  return out.join('\n');
}
