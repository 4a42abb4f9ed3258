/**
 * `gpuq watch` without a terminal: watch events as plain timestamped lines (state changes, a
 * resource line every 10 s, the log lines, the verdict) or as NDJSON, one event a line.
 * No ink here: this is what CI logs and pipes get.
 */
import { gpuText, queueLine } from '../core/queue.js';
import { exitCodeForVerdict } from '../core/exit-codes.js';
import { formatBytes, formatDuration, formatTimestamp, printableLine } from '../core/format.js';
import { jobFigures } from '../core/peaks.js';
import { durationText, exitText, sampleLine } from '../core/present.js';
import type { Job, Sample } from '../core/types.js';
import type { WatchEvent } from './events.js';

export interface PlainOptions {
  /** One NDJSON object per event instead of text lines. */
  json: boolean;
  /** Least time between two resource lines (default 10 s). */
  resourceEveryMs?: number;
  /** The clock, ms since the epoch. */
  now?: () => number;
}

export interface PlainSinks {
  /** A line for stdout (the watch's output). */
  out: (line: string) => void;
  /** A message for stderr (reconnects). */
  warn: (line: string) => void;
}

/** The opening line for a job: who, where, state and main limits. */
export function jobText(job: Job): string {
  const gpus = gpuText(job);
  const mem = job.limits.memoryBytes ? ` · memory ${formatBytes(job.limits.memoryBytes, 'column')}` : '';
  return (
    `job ${job.id} (${printableLine(job.name)}) on ${job.node}, ${gpus}: ${job.state} · ` +
    `timeout ${formatDuration(job.limits.timeoutS, 'column')}${mem}`
  );
}

/**
 * The verdict lines: class, exit, duration and summary, the peaks recorded with the verdict (as
 * every other command prints them), then the first hint.
 */
export function verdictText(job: Job, nowMs: number = Date.now()): string[] {
  const v = job.verdict;
  if (!v) return [];
  const cls = v.cause ? `${v.class} (${v.cause})` : v.class;
  const figures = jobFigures(job, nowMs);
  const lines = [`done: ${cls}, ${exitText(v)}, ran ${durationText(figures.durationMs)}: ${v.summary}`];
  for (const p of figures.peaks ?? []) lines.push(`peak: ${p.text}`);
  if (v.hints[0]) lines.push(`hint: ${v.hints[0]}`);
  return lines;
}

/** One NDJSON record for an event, with `at` as ISO 8601 UTC. */
export function jsonRecord(e: WatchEvent, now: number): Record<string, unknown> {
  const at = new Date(e.type === 'log' ? e.at : now).toISOString();
  switch (e.type) {
    case 'log':
      return { type: 'log', at, stream: e.stream, line: e.line };
    case 'sample':
      return { type: 'sample', at, sample: e.sample };
    case 'job':
      return { type: 'job', at, state: e.job.state, job: e.job };
    case 'verdict': {
      // The same duration and peaks as list, show and diagnose --json print for this job.
      const figures = jobFigures(e.job, now);
      return {
        type: 'verdict',
        at,
        verdict: e.job.verdict,
        exitCode: e.job.verdict ? exitCodeForVerdict(e.job.verdict.class) : null,
        job: e.job,
        durationMs: figures.durationMs,
        peaks: figures.peaks,
      };
    }
    case 'connection':
      return e.status === 'connected'
        ? { type: 'connection', at, status: 'connected' }
        : { type: 'connection', at, status: 'reconnecting', retryInS: e.retryInS, reason: e.reason };
  }
}

/** Makes the printer: feed it every event in order. */
export function plainPrinter(sinks: PlainSinks, opts: PlainOptions): (e: WatchEvent) => void {
  const now = opts.now ?? Date.now;
  const every = opts.resourceEveryMs ?? 10_000;
  let job: Job | null = null;
  let lastResourceAt = -Infinity;
  let unprinted: Sample | null = null;
  let reconnecting = false;
  let lastLive = false;
  let ending = false;
  const line = (text: string, at = now()): void => sinks.out(`${formatTimestamp(at)} ${text}`);

  return (e) => {
    if (opts.json) {
      sinks.out(JSON.stringify(jsonRecord(e, now())));
      return;
    }
    switch (e.type) {
      case 'job': {
        if (job === null) line(jobText(e.job));
        else if (job.state !== e.job.state) line(`state: ${e.job.state}`);
        // A queued job's place, each time it changes (its estimate alone moves with the clock).
        const q = e.job.state === 'queued' ? e.job.queue : null;
        const was = job?.state === 'queued' ? job.queue : null;
        if (q && (!was || was.position !== q.position || was.reason !== q.reason))
          line(`queued: ${printableLine(queueLine(q, e.job.node, now()))}`);
        job = e.job;
        return;
      }
      case 'log':
        // Program output stays inside its one prefixed line: no escapes, no \r to redraw it.
        line(`[${e.stream}] ${printableLine(e.line)}`, e.at);
        return;
      case 'sample':
        // Once the job's processes are gone, its last live figures stay the ones that matter.
        if (e.sample.procs === 0 && lastLive) {
          if (!ending) line("state: ending (the job's processes are gone; the supervisor is collecting the verdict)");
          ending = true;
          return;
        }
        lastLive = e.sample.procs > 0;
        if (e.sample.t - lastResourceAt >= every) {
          lastResourceAt = e.sample.t;
          unprinted = null;
          line(`resources: ${sampleLine(e.sample, job?.limits ?? null)}`);
        } else {
          unprinted = e.sample;
        }
        return;
      case 'connection':
        if (e.status === 'reconnecting') {
          reconnecting = true;
          sinks.warn(`gpuq: node ${job?.node ?? '?'}: ${e.reason}; reconnecting in ${e.retryInS} s`);
        } else if (reconnecting) {
          reconnecting = false;
          sinks.warn(`gpuq: node ${job?.node ?? '?'}: reconnected`);
        }
        return;
      case 'verdict':
        // The last figures before the end matter most (the RSS that hit the limit).
        if (unprinted !== null) line(`resources: ${sampleLine(unprinted, job?.limits ?? null)}`);
        unprinted = null;
        job = e.job;
        for (const t of verdictText(e.job, now())) line(t);
        return;
    }
  };
}
