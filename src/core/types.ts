/**
 * The plain data that flows through gpuq: jobs as the ledger stores them, the files a
 * supervisor writes on a node, and verdicts. No I/O here; everything is JSON-serialisable.
 */
import type { GradingFiles } from './grading.js';
import type { gpuSampleShape, monitorFileShape, queueFileShape, sampleShape, statusFileShape } from './job-files.js';
import type { historyEntryShape, jobShape, remoteInfoShape, usageShape, verdictShape } from './job-shape.js';
import type { Infer } from './shape.js';

/** Lifecycle of a job as the contract names it. */
export const JOB_STATES = ['pending', 'queued', 'running', 'grading', 'done'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** Verdict classes of the contract; each maps to one exit code (see exit-codes.ts). */
export const VERDICT_CLASSES = [
  'succeeded',
  'failed',
  'timeout',
  'oom',
  'gpu_oom',
  'limit',
  'signaled',
  'cancelled',
  'lost',
  'grading_failed',
  'rejected',
] as const;
export type VerdictClass = (typeof VERDICT_CLASSES)[number];

/**
 * What keeps a job's program from its supervisor's files and processes (templates/README.md):
 * "uid" another user (the node account is root), "userns" user + mount + pid namespaces,
 * "container" a Docker container (`--isolation docker`), "none".
 */
export const BOUNDARIES = ['uid', 'userns', 'container', 'none'] as const;
export type Boundary = (typeof BOUNDARIES)[number];
/** A node's boundary setting: the best it can give, or none at all. */
export type BoundaryMode = 'auto' | 'none';

export const ISOLATIONS = ['ulimit', 'docker'] as const;
export type Isolation = (typeof ISOLATIONS)[number];

/** Limits in force for one job; declared once, as a table, in core/limits.ts. */
export type { Limits } from './limits.js';

// The types of what gpuq reads back from a file (the ledger, a job folder) are inferred from the
// shapes that check it (core/job-shape.ts, core/job-files.ts), so a check and its type cannot drift
// apart; the fields' meanings are documented on the shapes.
/** A job's verdict, once it is done. */
export type Verdict = Infer<typeof verdictShape>;
/** One change of a job's state. */
export type HistoryEntry = Infer<typeof historyEntryShape>;
/** Where a job lives on its node, learnt at launch. */
export type RemoteInfo = Infer<typeof remoteInfoShape>;
/** A finished job's peaks, measured once when its verdict was recorded. */
export type Usage = Infer<typeof usageShape>;
/** A job as the ledger stores it and `--json` prints it. */
export type Job = Infer<typeof jobShape>;

/** status.json, written by the supervisor at each change. */
export type StatusFile = Infer<typeof statusFileShape>;
/** Which limit the supervisor itself enforced when it killed the job. */
export type LimitFired = StatusFile['limitFired'];
/** monitor.json, the sampler's running peaks. */
export type MonitorFile = Infer<typeof monitorFileShape>;
/** One line of samples.jsonl. */
export type Sample = Infer<typeof sampleShape>;
/** One GPU in a sample. */
export type GpuSample = Infer<typeof gpuSampleShape>;
/** queue.json, a queued job's place in its node's GPU queue. */
export type QueueFile = Infer<typeof queueFileShape>;

/** Everything the client reads back from a job folder in one round trip. */
export interface JobProbe {
  status: StatusFile | null;
  monitor: MonitorFile | null;
  /** Last lines of stderr.log (at most ~64 KiB). */
  stderrTail: string;
  /** Last lines of samples.jsonl, parsed. */
  recentSamples: Sample[];
  /** Whether the supervisor still holds the job lock (so it is alive). */
  supervisorAlive: boolean;
  /** The node's current boot id. */
  bootId: string | null;
  /** queue.json while the job waits in the node's GPU queue (absent: not read). */
  queue?: QueueFile | null;
  /** The newest grading's files, gradings/N/ (issue 13; absent or null: none). */
  grading?: GradingFiles | null;
}
