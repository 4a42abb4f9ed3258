/**
 * The facts about a job that several screens show, each in one form: the tone of a state or a
 * verdict (each front end maps tones to its colours once), how the program ended, its limits,
 * and one resource sample. `list`, `show`, `diagnose`, `watch` (live and plain) all print these.
 * Pure: plain data in, text out; units come from format.ts.
 */
import { formatBytes, formatDuration, formatPercent } from './format.js';
import type { JobState, Limits, Sample, Verdict, VerdictClass } from './types.js';
import { describeLimits, type LimitItem } from './limits.js';

/**
 * What a state or verdict means to the reader, independent of colour: `ok` went well, `active`
 * is under way, `waiting` has not started, `warn` ended without being the program's fault or
 * without a known outcome, `bad` failed, `muted` was stopped on purpose. `info` and `accent`
 * only set labels apart (a node name, a GPU) and carry no judgement.
 */
export type Tone = 'ok' | 'active' | 'waiting' | 'warn' | 'bad' | 'muted' | 'info' | 'accent';

const TONES: Record<JobState | VerdictClass, Tone> = {
  pending: 'waiting',
  queued: 'waiting',
  running: 'active',
  grading: 'active',
  done: 'muted',
  succeeded: 'ok',
  failed: 'bad',
  timeout: 'bad',
  oom: 'bad',
  gpu_oom: 'bad',
  limit: 'bad',
  signaled: 'bad',
  cancelled: 'muted',
  lost: 'warn',
  grading_failed: 'warn',
  rejected: 'bad',
};

/**
 * The tone of a job state or verdict class, the one judgement `list`, `show`, `diagnose` and the
 * live view colour by. Unknown labels (a newer ledger) are `bad`, so they are not overlooked.
 */
export function tone(label: JobState | VerdictClass | string): Tone {
  return (TONES as Record<string, Tone>)[label] ?? 'bad';
}

/** The tone of a fill level against a limit: `ok`, then `warn` from 70 %, `bad` from 90 %. */
export function levelTone(fraction: number): Tone {
  return fraction >= 0.9 ? 'bad' : fraction >= 0.7 ? 'warn' : 'ok';
}

/**
 * How the program ended, in words: "exit 0", "exit 137 · SIGKILL", "exit 137 · SIGKILL · timed
 * out", "SIGSEGV", "no exit status". Every screen that shows a verdict quotes this.
 */
export function exitText(v: Pick<Verdict, 'exitCode' | 'signal' | 'timedOut'>): string {
  const parts: string[] = [];
  if (v.exitCode !== null) parts.push(`exit ${v.exitCode}`);
  if (v.signal) parts.push(v.signal);
  if (parts.length === 0) parts.push('no exit status');
  if (v.timedOut) parts.push('timed out');
  return parts.join(' · ');
}

/**
 * A job's limits in one line, "timeout 10m00s (grace 10s), memory 200 MiB, pids 64, files 4096,
 * file size unlimited, cpu time unlimited, gpus 1", as `show` and the diagnosis panel print them.
 */
export function limitsLine(l: Limits): string {
  const value = (item: LimitItem): string => {
    if (item.value === null) return 'unlimited';
    if (item.kind === 'size') return formatBytes(item.value);
    if (item.kind === 'duration') return formatDuration(item.value, 'column');
    return String(item.value);
  };
  const items = describeLimits(l);
  const grace = items.find((i) => i.key === 'graceS');
  return items
    .filter((i) => i !== grace)
    .map((i) => `${i.label} ${value(i)}${i.key === 'timeoutS' && grace ? ` (grace ${value(grace)})` : ''}`)
    .join(', ');
}

/**
 * How long a job ran, the one form every command prints it in: "303ms" under a second, "5.4s"
 * under a minute (so a run just past its limit does not read "5s of the 5s limit"), then the
 * text form ("1m30s", "2h5m"); "-" when unknown. Takes the ms of core/job `jobDurationMs`.
 */
export function durationText(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 59_950) return `${(ms / 1000).toFixed(1).replace(/\.0$/, '')}s`;
  return formatDuration(ms / 1000);
}

/**
 * One resource sample in one line, against the limits where given: "RSS 120 MiB / 200 MiB (60%) ·
 * CPU 99% · tasks 3 / 64 (1 process) · GPU0 mem 1.00 GiB (job 900 MiB) util 50% · folder 12.0
 * KiB". Tasks are processes and threads together, what --pids counts. The plain watch prints it
 * every 10 s; `diagnose` shows it for a running job.
 */
export function sampleLine(sample: Sample, limits: Pick<Limits, 'memoryBytes' | 'pids'> | null): string {
  const b = (n: number) => formatBytes(n, 'column');
  const mem = limits?.memoryBytes ?? null;
  const pids = limits?.pids ?? null;
  const parts = [
    mem
      ? `RSS ${b(sample.rssBytes)} / ${b(mem)} (${formatPercent(sample.rssBytes / mem)})`
      : `RSS ${b(sample.rssBytes)}`,
    `CPU ${formatPercent(sample.cpuPct / 100)}`,
    `tasks ${sample.threads}${pids ? ` / ${pids}` : ''} (${sample.procs} process${sample.procs === 1 ? '' : 'es'})`,
  ];
  for (const g of sample.gpu ?? []) {
    const util = g.utilPct === null ? '' : ` util ${formatPercent(g.utilPct / 100)}`;
    const mine = g.jobMemBytes === null ? '' : ` (job ${b(g.jobMemBytes)})`;
    parts.push(`GPU${g.index} mem ${b(g.memUsedBytes)}${mine}${util}`);
  }
  parts.push(`folder ${b(sample.folderBytes)}`);
  return parts.join(' · ');
}
