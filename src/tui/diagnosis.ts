/**
 * The text of the diagnosis panel (`d` in the live view), built from the verdict the ledger
 * holds: class, exit, summary, every piece of evidence and every hint, the limits in force and
 * the peaks the view saw. Pure; `gpuq diagnose ID` adds the node's side.
 */
import type { Job } from '../core/types.js';
import { formatBytes, formatDuration } from './format.js';
import { exitText } from './lines.js';
import type { Peaks } from './model.js';

/** The limits of a job in one line. */
export function limitsText(job: Job): string {
  const l = job.limits;
  const parts = [
    `timeout ${formatDuration(l.timeoutS)} (grace ${formatDuration(l.graceS)})`,
    `memory ${l.memoryBytes === null ? 'unlimited' : formatBytes(l.memoryBytes)}`,
    `pids ${l.pids ?? 'unlimited'}`,
    `files ${l.files ?? 'unlimited'}`,
    `file size ${l.fileSizeBytes === null ? 'unlimited' : formatBytes(l.fileSizeBytes)}`,
    `cpu time ${l.cpuTimeS === null ? 'unlimited' : formatDuration(l.cpuTimeS)}`,
    `gpus ${l.gpus}`,
  ];
  return parts.join(', ');
}

/** The full diagnosis as plain text, or a line saying there is none yet. */
export function diagnosisText(job: Job | null, peaks: Peaks | null = null): string {
  if (job === null || job.verdict === null) return 'No verdict yet: the diagnosis is ready once the job is done.';
  const v = job.verdict;
  const out: string[] = [];
  out.push(`Verdict: ${v.class}${v.cause ? ` (${v.cause})` : ''} · ${exitText(job)}`);
  out.push(v.summary);
  out.push('');
  out.push('Evidence:');
  out.push(...(v.evidence.length > 0 ? v.evidence.map((e) => `  - ${e}`) : ['  (none recorded)']));
  out.push('');
  out.push('What to do:');
  out.push(...(v.hints.length > 0 ? v.hints.map((h) => `  - ${h}`) : ['  (no suggestion)']));
  out.push('');
  out.push(`Limits: ${limitsText(job)}`);
  if (peaks !== null) {
    const gpu = peaks.gpuMemBytes === null ? '' : `, GPU memory ${formatBytes(peaks.gpuMemBytes)}`;
    out.push(
      `Peaks seen while watching: RSS ${formatBytes(peaks.rssBytes)}, CPU ${Math.round(peaks.cpuPct)}%, processes ${peaks.procs}, folder ${formatBytes(peaks.folderBytes)}${gpu}`,
    );
  }
  out.push(`Node ${job.node}, folder ${job.remote?.dir ?? '(never created)'}`);
  out.push('');
  out.push(`More (last log lines, node state): gpuq diagnose ${job.id}`);
  return out.join('\n');
}
