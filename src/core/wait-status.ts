/**
 * The one-line status that `wait` and `submit --wait` keep current on a terminal's stderr while
 * they block: "running 1m5s · 1.2 GiB", or "queued, position 3 on gpu1 (waiting for GPU 0,
 * held by job abc)". Pure: a job, its latest sample and its queue.json in, one line out.
 */
import { formatBytes, printableLine } from './format.js';
import { jobDurationMs } from './job.js';
import { durationText } from './present.js';
import type { Job, QueueFile, Sample } from './types.js';

/** What the wait knows of one job at a moment: the ledger's job and the node's latest facts. */
export interface WaitSnapshot {
  job: Pick<Job, 'id' | 'state' | 'node' | 'startedAt' | 'endedAt' | 'queue'>;
  /** The latest resource sample (samples.jsonl), or null before the first. */
  sample: Sample | null;
  /** queue.json while the job waits in its node's GPU queue, or null. */
  queue: QueueFile | null;
}

/** "GPU 0, held by job abc" and the like, for each GPU of the node that is not free. */
function busyGpus(q: QueueFile): string[] {
  return q.gpus
    .filter((g) => g.state !== 'free')
    .map((g) => {
      const job = g.job ? `job ${printableLine(g.job)}` : 'another job';
      if (g.state === 'foreign')
        return `GPU ${g.index}, used outside gpuq by pid ${g.pid ?? '?'}${g.user ? ` (${printableLine(g.user)})` : ''}`;
      if (g.state === 'orphan') return `GPU ${g.index}, held by a leftover process of ${job}`;
      return `GPU ${g.index}, held by ${job}`;
    });
}

/** Why a queued job waits, shortly: the jobs ahead of it, or the GPUs it waits for. */
function queuedWhy(q: QueueFile): string | null {
  if (q.aheadCount > 0) return `behind ${q.aheadCount} job${q.aheadCount === 1 ? '' : 's'}`;
  const busy = busyGpus(q);
  return busy.length > 0 ? `waiting for ${busy.join('; ')}` : null;
}

/**
 * The status of one waited-for job in one line: its state, and while it runs how long it has run
 * (the duration every command prints) and its memory from the latest sample (RSS, and the job's
 * GPU memory where the node reports it); while queued its place in the node's queue and why.
 */
export function waitStatusText(s: WaitSnapshot, nowMs: number): string {
  const { job } = s;
  const node = printableLine(job.node);
  if (job.state === 'pending') return `starting on ${node}`;
  if (job.state === 'queued') {
    const position = s.queue?.position ?? job.queue?.position ?? null;
    const why = s.queue ? queuedWhy(s.queue) : null;
    return `queued${position !== null ? `, position ${position}` : ''} on ${node}${why ? ` (${why})` : ''}`;
  }
  const parts = [`${job.state} ${durationText(jobDurationMs(job, nowMs))}`];
  if (job.state === 'running' && s.sample) {
    parts.push(formatBytes(s.sample.rssBytes, 'column'));
    const gpu = (s.sample.gpu ?? []).reduce((sum, g) => sum + (g.jobMemBytes ?? 0), 0);
    if (gpu > 0) parts.push(`GPU ${formatBytes(gpu, 'column')}`);
  }
  return parts.join(' · ');
}

/** The most active jobs the status line names one by one; more are counted by state. */
const MAX_EACH = 3;

/**
 * The status of several waited-for jobs in one line: how many are done, then each job still
 * active by id ("1 of 3 done · ab12cd34 running 5s | ef56gh78 queued, position 1 on gpu1"), or,
 * past MAX_EACH of them, how many are in each state ("40 of 100 done · 52 running, 8 queued").
 */
export function waitStatusLine(snaps: readonly WaitSnapshot[], nowMs: number): string {
  if (snaps.length === 1) return waitStatusText(snaps[0] as WaitSnapshot, nowMs);
  const active = snaps.filter((s) => s.job.state !== 'done');
  const done = snaps.length - active.length;
  if (active.length > MAX_EACH) {
    // Many jobs (a bulk submit): how many are in each state, not each one.
    const counts = new Map<string, number>();
    for (const s of active) counts.set(s.job.state, (counts.get(s.job.state) ?? 0) + 1);
    const by = [...counts].map(([state, n]) => `${n} ${state === 'pending' ? 'starting' : state}`).join(', ');
    return `${done} of ${snaps.length} done · ${by}`;
  }
  const each = active.map((s) => `${s.job.id} ${waitStatusText(s, nowMs)}`).join(' | ');
  return `${done} of ${snaps.length} done${each ? ` · ${each}` : ''}`;
}

/**
 * A status line cut to fit a terminal `columns` wide (one column short of it, so the cursor never
 * wraps and `\r` returns to the line's start), with "…" where it was cut.
 */
export function fitLine(text: string, columns: number | null | undefined): string {
  if (!columns || columns < 10) return text;
  const max = columns - 1;
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}
