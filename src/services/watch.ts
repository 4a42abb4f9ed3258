/**
 * `gpuq watch`, the data side: one connection to the job's node follows stdout.log, stderr.log
 * and samples.jsonl (tail -F on the node, resumed at the byte it reached after a drop) and
 * waits on the supervisor's lock for the end, so nothing is polled; the verdict is then
 * classified and recorded like `wait` does. Everything is reported as WatchEvents; the live
 * view, the plain printer and the NDJSON printer only consume them. No ink here.
 */
import { StringDecoder } from 'node:string_decoder';
import { parseSampleLine } from '../core/job-files.js';
import type { Job, Sample } from '../core/types.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileSize, followFile, probeJob, type Probe } from '../node/protocol.js';
import type { Transport } from '../transport/transport.js';
import type { AppContext } from './context.js';
import {
  openJobLink,
  type StallWatch,
  settle,
  stallWatchOf,
  untilOver,
  untilStarted,
  type WaitLook,
} from './job-link.js';
import { findJob, syncGrading, syncQueued } from './jobs.js';
import { untilSlurmRuns } from './slurm.js';

/** Which of the job's two output files a log line came from. */
export type LogStream = 'stdout' | 'stderr';

/** The job as the ledger has it: sent first, then whenever its state or node folder changes. */
export interface JobEvent {
  type: 'job';
  job: Job;
}

/** One resource snapshot (a line of samples.jsonl). */
export interface SampleEvent {
  type: 'sample';
  sample: Sample;
}

/** One line of the job's stdout or stderr, without its newline; `at` is ms since the epoch. */
export interface LogEvent {
  type: 'log';
  stream: LogStream;
  line: string;
  at: number;
}

/**
 * The state of the streaming connection to the node. `reconnecting` says when the next try is
 * due (`retryInS` from `at`); `at` (ms since the epoch) is optional: the view stamps the event
 * with its own clock when it arrives without one.
 */
export type ConnectionEvent =
  | { type: 'connection'; status: 'connected' }
  | { type: 'connection'; status: 'reconnecting'; retryInS: number; reason: string; at?: number };

/** The job is over: `job.verdict` is set and `job.state` is 'done'. */
export interface VerdictEvent {
  type: 'verdict';
  job: Job;
}

/** Everything `gpuq watch` shows, as one stream. */
export type WatchEvent = JobEvent | SampleEvent | LogEvent | ConnectionEvent | VerdictEvent;

export interface WatchJobOptions {
  emit: (e: WatchEvent) => void;
  /** Aborting stops following (the job keeps running); watchJob then resolves with null. */
  signal?: AbortSignal;
  /** Bytes of each log shown from before the watch started (default 64 KiB). */
  logBacklogBytes?: number;
  /** Bytes of samples.jsonl replayed at the start, for the sparklines (default 16 KiB). */
  sampleBacklogBytes?: number;
  /** The clock, ms since the epoch (tests pin it). */
  now?: () => number;
  /** How often a queued job's place is asked for (default QUEUE_POLL_MS). */
  queuePollMs?: number;
}

type Followed = 'stdout.log' | 'stderr.log' | 'samples.jsonl';
const FOLLOWED: readonly Followed[] = ['stdout.log', 'stderr.log', 'samples.jsonl'];
/** A line longer than this without a newline is shown in pieces rather than held back. */
const MAX_PENDING_CHARS = 64 * 1024;

/** Splits a byte stream into lines; the first (partial) line is dropped when `skipFirst`. */
export function lineSplitter(
  onLine: (line: string) => void,
  skipFirst = false,
): { push(c: Buffer): void; flush(): void } {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let skip = skipFirst;
  const emit = (line: string): void => {
    if (skip) skip = false;
    else onLine(line);
  };
  return {
    push(c) {
      pending += decoder.write(c);
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        emit(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
        nl = pending.indexOf('\n');
      }
      if (pending.length > MAX_PENDING_CHARS) {
        emit(pending);
        pending = '';
      }
    },
    flush() {
      pending += decoder.end();
      if (pending !== '') emit(pending);
      pending = '';
    },
  };
}

/** Parses one line of samples.jsonl, or null when it is not a sample (see core/job-files). */
export function parseSample(line: string): Sample | null {
  return parseSampleLine(line);
}

/** Per-file progress that survives reconnects: where to resume and how to cut lines. */
interface FollowState {
  offset: number;
  splitter: ReturnType<typeof lineSplitter>;
}

/**
 * Runs on one connection: follows the three files and waits for the end; resolves with the
 * closing probe (null when aborted). A dropped link rejects so the job link can resume.
 */
async function followOnce(
  t: Transport,
  dir: string,
  launchBootId: string | null,
  files: Map<Followed, FollowState>,
  signal?: AbortSignal,
  stall?: StallWatch,
  look?: WaitLook,
): Promise<Probe | null> {
  const inner = new AbortController();
  const stop = (): void => inner.abort();
  signal?.addEventListener('abort', stop, { once: true });
  const follow = (file: Followed, st: FollowState, s: AbortSignal): Promise<number> =>
    followFile(
      t,
      dir,
      file,
      st.offset,
      (c) => {
        st.offset += c.length;
        st.splitter.push(c);
      },
      s,
    );
  const follows = [...files.entries()].map(([file, st]) => follow(file, st, inner.signal));
  const failed = new Promise<never>((_, reject) => {
    for (const p of follows) p.catch(reject);
  });
  failed.catch(() => undefined);
  const ended = untilOver(t, dir, launchBootId, inner.signal, stall, look);
  try {
    const probe = await Promise.race([ended, failed]);
    if (probe === null || signal?.aborted) return null;
    // tail --pid takes a second to notice the supervisor is gone: stop it, and read the rest of
    // each file (complete now) from the byte reached; with the lock free that read just ends.
    inner.abort();
    await Promise.allSettled(follows);
    const rest = new AbortController();
    const stopRest = (): void => rest.abort();
    signal?.addEventListener('abort', stopRest, { once: true });
    try {
      await Promise.all([...files.entries()].map(([file, st]) => follow(file, st, rest.signal)));
    } finally {
      signal?.removeEventListener('abort', stopRest);
    }
    return signal?.aborted ? null : probe;
  } finally {
    inner.abort();
    signal?.removeEventListener('abort', stop);
    await Promise.allSettled([...follows, ended]);
  }
}

/** How often `watch` asks the node for a queued job's place (queue.py rewrites it at most once a second). */
export const QUEUE_POLL_MS = 1000;

/**
 * While the job waits in its node's GPU queue: probes it every `everyMs`, records its place (or
 * its start) in the ledger like every command does, and reports each change as a job event,
 * until it is no longer queued or `signal` aborts. A failed probe ends it quietly: the follows on
 * the same link notice a dropped connection.
 */
async function followQueue(
  ctx: AppContext,
  t: Transport,
  cur: { job: Job },
  emit: (e: WatchEvent) => void,
  signal: AbortSignal,
  everyMs: number,
): Promise<void> {
  const dir = cur.job.remote?.dir;
  if (!dir) return;
  try {
    while (!signal.aborted && cur.job.state === 'queued') {
      const probe = await probeJob(t, dir);
      if (signal.aborted) return;
      const next = await syncQueued(ctx, cur.job, probe);
      if (next !== cur.job) {
        cur.job = next;
        emit({ type: 'job', job: next });
      }
      if (next.state !== 'queued' || !probe.supervisorAlive) return;
      await sleep(everyMs, undefined, { signal });
    }
  } catch {
    // aborted, or the link dropped (the follows report it)
  }
}

/** How often `watch` looks at a job its supervisor grades (issue 13), for the state and the grader's log. */
export const GRADING_LOOK_S = 1;

/**
 * For a job whose competition has a grader (issue 13): a look at each probe of the wait, so the
 * view shows the state `grading` (recorded in the ledger like every command does) and the new
 * lines of the grader's stderr.log, as stderr lines marked "grader |". Undefined otherwise.
 */
export function gradingLook(
  ctx: AppContext,
  cur: { job: Job },
  emit: (e: WatchEvent) => void,
  now: () => number,
): WaitLook | undefined {
  const comp = cur.job.competition ? ctx.config.competitions[cur.job.competition] : undefined;
  if (!comp?.grader) return undefined;
  let shown = '';
  let number = -1;
  return {
    everyS: GRADING_LOOK_S,
    async onProbe(p) {
      if (p.status?.state !== 'grading') return;
      const next = await syncGrading(ctx, cur.job, p);
      if (next !== cur.job) {
        cur.job = next;
        emit({ type: 'job', job: next });
      }
      const g = p.grading;
      if (!g) return;
      if (g.number !== number) {
        number = g.number;
        shown = '';
      }
      const tail = g.stderrTail;
      const fresh = tail.startsWith(shown) ? tail.slice(shown.length) : tail;
      const end = fresh.lastIndexOf('\n');
      if (end < 0) return;
      shown = tail.slice(0, tail.length - fresh.length + end + 1);
      for (const line of fresh.slice(0, end).split('\n'))
        emit({ type: 'log', stream: 'stderr', line: `grader | ${line}`, at: now() });
    },
  };
}

/**
 * Streams one job's events until its verdict (recorded in the ledger, like `wait`) or until
 * `signal` aborts. Resolves with the job, done, or null when aborted before the end.
 */
export async function watchJob(ctx: AppContext, id: string, opts: WatchJobOptions): Promise<Job | null> {
  const { emit, signal } = opts;
  const now = opts.now ?? Date.now;
  let job = await findJob(ctx, id);
  emit({ type: 'job', job });
  if (job.state !== 'done' && job.remote === null)
    job = await untilStarted(ctx, job, signal, (next) => emit({ type: 'job', job: next }));
  if (signal?.aborted) return null;
  const remote = job.remote;
  if (remote === null) {
    emit({ type: 'verdict', job });
    return job;
  }
  const files = new Map<Followed, FollowState>();
  const backlog = (f: Followed): number =>
    f === 'samples.jsonl' ? (opts.sampleBacklogBytes ?? 16 * 1024) : (opts.logBacklogBytes ?? 64 * 1024);
  const onLine =
    (f: Followed) =>
    (line: string): void => {
      if (f === 'samples.jsonl') {
        const sample = parseSample(line);
        if (sample !== null) emit({ type: 'sample', sample });
      } else {
        emit({ type: 'log', stream: f === 'stdout.log' ? 'stdout' : 'stderr', line, at: now() });
      }
    };
  const link = openJobLink(ctx, job, {
    ...(signal ? { signal } : {}),
    onReconnecting: (reason, inS) =>
      emit({ type: 'connection', status: 'reconnecting', retryInS: inS, reason, at: now() }),
    // The step itself says 'connected'; nothing may write to the terminal under the view.
    onReconnected: () => undefined,
  });
  // A job Slurm still holds has no supervisor to follow yet: its queue place until it runs.
  if (remote.slurmJobId && job.state !== 'done') {
    job = await untilSlurmRuns(ctx, job, link, signal).catch(async (e: unknown) => {
      await link.close();
      throw e;
    });
    emit({ type: 'job', job });
  }
  const probe = await link
    .run(
      async (t) => {
        emit({ type: 'connection', status: 'connected' });
        if (files.size === 0) {
          const sizes = await Promise.all(FOLLOWED.map((f) => fileSize(t, remote.dir, f)));
          FOLLOWED.forEach((f, i) => {
            const offset = Math.max(0, (sizes[i] ?? 0) - backlog(f));
            files.set(f, { offset, splitter: lineSplitter(onLine(f), offset > 0) });
          });
        }
        const queued = new AbortController();
        const cur = { job };
        const place =
          job.state === 'queued'
            ? followQueue(ctx, t, cur, emit, queued.signal, opts.queuePollMs ?? QUEUE_POLL_MS)
            : Promise.resolve();
        try {
          return await followOnce(
            t,
            remote.dir,
            remote.bootId,
            files,
            signal,
            stallWatchOf(ctx, job),
            gradingLook(ctx, cur, emit, now),
          );
        } finally {
          queued.abort();
          await place;
          job = cur.job;
        }
      },
      job.state === 'done' ? { maxAttempts: 1 } : {},
    )
    .catch((e: unknown) => {
      // A finished job whose folder is gone still has its verdict to show.
      if (signal?.aborted || job.state === 'done') return null;
      throw e;
    })
    .finally(() => link.close());
  if (signal?.aborted) return null;
  for (const st of files.values()) st.splitter.flush();
  // Re-read the job: a cancel asked for meanwhile (its history note) changes the verdict.
  const cur = await findJob(ctx, job.id);
  if (cur.state !== 'done' && probe === null) return null;
  const done = cur.state === 'done' ? cur : await settle(ctx, cur, probe as Probe);
  emit({ type: 'verdict', job: done });
  return done;
}
