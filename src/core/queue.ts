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

/** The list's state for a job: "queued #3" while it waits with a known position, else its state. */
export function queuedLabel(job: { state: string; queue?: QueueView | null }): string {
  return job.state === 'queued' && job.queue ? `queued #${job.queue.position}` : job.state;
}

/**
 * A queued job's estimated start as people read it: "12:34 UTC, in 4m", "any moment now", or
 * why it is unknown. `iso` is the contract's `estimatedStart`.
 */
export function estimateText(iso: string | null, nowMs: number): string {
  if (iso === null) return 'unknown (a GPU is held by something without a time limit gpuq knows)';
  const at = Date.parse(iso);
  if (!Number.isFinite(at)) return 'unknown';
  const inS = Math.round((at - nowMs) / 1000);
  if (inS <= 1) return 'any moment now';
  const d = Math.floor(inS / 86400);
  const h = Math.floor((inS % 86400) / 3600);
  const m = Math.floor((inS % 3600) / 60);
  const s = inS % 60;
  const span =
    d > 0
      ? `${d}d${h}h`
      : h > 0
        ? `${h}h${String(m).padStart(2, '0')}m`
        : m > 0
          ? `${m}m${s > 0 ? `${s}s` : ''}`
          : `${s}s`;
  return `${new Date(at).toISOString().slice(11, 16)} UTC, in ${span} if every job ahead uses its whole time limit`;
}

/** One line for a queued job: "position 3 on local · behind 2 jobs on local · starts 12:34 UTC, in 4m…". */
export function queueLine(q: QueueView, node: string, nowMs: number): string {
  return `position ${q.position} on ${node} · ${q.reason} · starts ${estimateText(q.estimatedStart, nowMs)}`;
}

/** One ticket of a node's queue as `gpuq nodes` reads it from the lock folder. */
export interface NodeTicket {
  jobId: string;
  priority: number;
  need: number;
  timeoutS: number;
}

/** One GPU's lease as `gpuq nodes` reads it: the lock's state and what its holder wrote (display only). */
export interface NodeLease {
  index: number;
  state: 'free' | 'held' | 'orphan';
  job: string | null;
  submitter: string | null;
  supervisorPid: number | null;
  sinceMs: number | null;
  timeoutS: number | null;
}

/** A node's GPU queue as seen from outside it: live tickets in order and each GPU's lease. */
export interface NodeQueue {
  tickets: NodeTicket[];
  leases: NodeLease[];
}

const TICKET = /^q-(\d{4})-(\d{12})-([0-9a-z]{1,32})-(\d{1,2})-(\d{1,9})$/;

/** A ticket file name (templates/queue.py `ticket_name`) as data, or null when it is not one. */
export function parseTicketName(name: string): NodeTicket | null {
  const m = TICKET.exec(name);
  if (!m) return null;
  return { jobId: m[3] as string, priority: 1000 - Number(m[1]), need: Number(m[4]), timeoutS: Number(m[5]) };
}

/**
 * How long a job needing `need` GPUs at `priority` would wait on a node, from its queue: it goes
 * behind every live ticket of equal or higher priority; the estimate is estimateStartMs's. 0:
 * it would start now; null: unknown (an orphan, or no queue facts).
 */
export function expectedWaitMs(
  nq: NodeQueue | null | undefined,
  need: number,
  priority: number,
  nowMs: number,
): number | null {
  if (!nq) return null;
  if (nq.leases.length < need) return null;
  const ahead = nq.tickets.filter((t) => t.priority >= priority);
  const q: QueueFile = {
    version: 1,
    position: ahead.length + 1,
    need,
    priority,
    ahead: ahead.map((t) => ({ gpus: t.need, timeoutS: t.timeoutS, priority: t.priority })),
    aheadCount: ahead.length,
    length: nq.tickets.length + 1,
    gpus: nq.leases.map((l) => ({
      index: l.index,
      state: l.state,
      job: l.job,
      submitter: l.submitter,
      pid: l.supervisorPid,
      user: null,
      sinceMs: l.sinceMs,
      timeoutS: l.timeoutS,
      memMiB: null,
    })),
    updatedAtMs: nowMs,
  };
  const start = estimateStartMs(q, nowMs);
  return start === null ? null : Math.max(0, start - nowMs);
}

/** A job's GPUs in a line: "GPU 0,2", "1 GPU, not leased yet" (queued or pending), "no GPU". */
export function gpuText(job: { state: string; gpus: readonly number[]; limits: { gpus: number } }): string {
  if (job.gpus.length > 0) return `GPU ${job.gpus.join(',')}`;
  const n = job.limits.gpus;
  const waiting = job.state === 'queued' || job.state === 'pending';
  return n > 0 && waiting ? `${n} GPU${n === 1 ? '' : 's'}, not leased yet` : 'no GPU';
}
