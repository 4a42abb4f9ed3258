/**
 * The GPU queue as the client sees it. Pure: the node's waiter (templates/queue.py) decides the
 * order and writes queue.json; these functions read it into a position, a reason and an
 * estimated start, and choose a node for a job that has to wait everywhere.
 */
import { usageError } from './errors.js';
import type { QueueFile } from './types.js';

/** The lock folder of a node that does not name one: /tmp empties on reboot, like the locks themselves. */
export const DEFAULT_LOCK_DIR = '/tmp/gpuq-locks';
/** Memory (MiB) a process outside gpuq may hold on a GPU before the GPU counts as busy. */
export const DEFAULT_FOREIGN_MIB = 512;
/** `--priority` bounds: wide enough for any policy, narrow enough for a fixed-width ticket name. */
export const PRIORITY_MIN = -1000;
export const PRIORITY_MAX = 1000;

/** A queued job as `--json` shows it (the contract's `queue`). */
export interface QueueView {
  /** 1 = next to start on its node. */
  position: number;
  reason: string;
  /** ISO 8601 UTC, or null when nothing lets gpuq guess (a foreign process, an orphan). */
  estimatedStart: string | null;
}

/** Parses `--priority`: an integer within the bounds, else a usage error (exit 2). */
export function parsePriority(text: string): number {
  const t = text.trim();
  if (!/^[+-]?\d{1,5}$/.test(t))
    throw usageError(
      `--priority "${text}" is not an integer.`,
      `Give a whole number from ${PRIORITY_MIN} to ${PRIORITY_MAX}.`,
    );
  const n = Number(t);
  if (n < PRIORITY_MIN || n > PRIORITY_MAX)
    throw usageError(
      `--priority ${n} is out of range.`,
      `Give a whole number from ${PRIORITY_MIN} to ${PRIORITY_MAX}.`,
    );
  return n;
}

/** One ticket of a node's queue, as its file name encodes it. */
export interface Ticket {
  priority: number;
  /** The node's sequence number, taken under a lock when the job queued. */
  seq: number;
  jobId: string;
}

/**
 * The queue's order, as templates/queue.py sorts ticket names: higher priority first, then the
 * lower sequence number (never a clock). Kept here so the rule has one tested statement.
 */
export function compareTickets(a: Ticket, b: Ticket): number {
  return b.priority - a.priority || a.seq - b.seq || (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0);
}

/** A ticket's file name (templates/queue.py `ticket_name`): sorting names sorts the queue. */
export function ticketName(t: Ticket, need: number, timeoutS: number): string {
  const p = String(1000 - t.priority).padStart(4, '0');
  const s = String(t.seq).padStart(12, '0');
  return `q-${p}-${s}-${t.jobId}-${need}-${Math.min(Math.floor(timeoutS), 999_999_999)}`;
}

const time = (ms: number) => new Date(ms).toISOString().slice(11, 16);

/** "GPU 0 held by job abc (ann@laptop, since 12:00 UTC)" and the like, for each GPU not free. */
function describeGpus(q: QueueFile): string[] {
  const out: string[] = [];
  for (const g of q.gpus) {
    if (g.state === 'free') continue;
    if (g.state === 'foreign') {
      const mem =
        g.memMiB === null
          ? ''
          : `, ${g.memMiB >= 1024 ? `${(g.memMiB / 1024).toFixed(1)} GiB` : `${Math.round(g.memMiB)} MiB`}`;
      out.push(`GPU ${g.index} is used outside gpuq by pid ${g.pid ?? '?'} (${g.user ?? 'unknown user'}${mem})`);
    } else {
      const who = [g.submitter, g.sinceMs !== null ? `since ${time(g.sinceMs)} UTC` : null].filter(Boolean).join(', ');
      const job = g.job ? `job ${g.job}` : 'another job';
      out.push(
        g.state === 'orphan'
          ? `GPU ${g.index} is still held by a process of ${job}, whose supervisor is gone`
          : `GPU ${g.index} is held by ${job}${who ? ` (${who})` : ''}`,
      );
    }
  }
  return out;
}

/**
 * Why a queued job waits, in one sentence: the jobs ahead of it (how many of higher priority), or
 * the GPUs it waits for and who holds them.
 */
export function queueReason(q: QueueFile, node: string): string {
  if (q.aheadCount > 0) {
    const higher = q.ahead.filter((a) => a.priority > q.priority).length;
    const more = higher > 0 ? ` (${higher} of higher priority)` : '';
    return `behind ${q.aheadCount} job${q.aheadCount === 1 ? '' : 's'} on ${node}${more}`;
  }
  const busy = describeGpus(q);
  const want = `waiting for ${q.need} free GPU${q.need === 1 ? '' : 's'} on ${node}`;
  return busy.length > 0 ? `${want}: ${busy.join('; ')}` : want;
}

/**
 * When the job should start if every job runs to its time limit: the running jobs' ends, then the
 * jobs ahead in order, each taking the GPUs that free first (the queue is strict: no job starts
 * before one ahead of it). null where a GPU's end cannot be known (foreign use, an orphan) and
 * the job cannot start without it.
 */
export function estimateStartMs(q: QueueFile, nowMs: number): number | null {
  const free: number[] = q.gpus.map((g) => {
    if (g.state === 'free') return nowMs;
    if (g.state === 'held' && g.sinceMs !== null && g.timeoutS !== null && g.timeoutS > 0)
      return Math.max(nowMs, g.sinceMs + g.timeoutS * 1000);
    return Number.POSITIVE_INFINITY;
  });
  let t = nowMs;
  const jobs = [...q.ahead.map((a) => ({ gpus: a.gpus, timeoutS: a.timeoutS })), { gpus: q.need, timeoutS: 0 }];
  for (const j of jobs) {
    if (j.gpus < 1 || j.gpus > free.length) continue;
    free.sort((a, b) => a - b);
    const start = Math.max(t, free[j.gpus - 1] as number);
    if (!Number.isFinite(start)) return null;
    for (let i = 0; i < j.gpus; i++) free[i] = start + Math.max(0, j.timeoutS) * 1000;
    t = start;
  }
  return t;
}

/** The contract's `queue` of a queued job from its node's queue.json. */
export function queueView(q: QueueFile, node: string, nowMs: number): QueueView {
  const est = estimateStartMs(q, nowMs);
  return {
    position: q.position,
    reason: queueReason(q, node),
    estimatedStart: est === null ? null : new Date(est).toISOString(),
  };
}

/** One node's answer to "when could a job needing N GPUs start here?". */
export interface NodeWait {
  name: string;
  /** ms from now until the job could start (0: a GPU set is free now); null: unknown. */
  waitMs: number | null;
}

/**
 * The node to queue on when no node has the GPUs free: the one expected to start the job first,
 * unknown last, then the given order (the caller's ranking) on ties.
 */
export function pickByExpectedStart<T extends NodeWait>(nodes: readonly T[]): T[] {
  const key = (n: NodeWait) => (n.waitMs === null ? Number.POSITIVE_INFINITY : n.waitMs);
  return nodes
    .map((n, i) => ({ n, i }))
    .sort((a, b) => key(a.n) - key(b.n) || a.i - b.i)
    .map((x) => x.n);
}
