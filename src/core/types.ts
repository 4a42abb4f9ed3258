/**
 * The plain data that flows through gpuq: jobs as the ledger stores them, the files a
 * supervisor writes on a node, and verdicts. No I/O here; everything is JSON-serialisable.
 */
import type { Limits } from './limits.js';

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
] as const;
export type VerdictClass = (typeof VERDICT_CLASSES)[number];

/**
 * What keeps a job's program from its supervisor's files and processes (templates/README.md):
 * "uid" another user (the node account is root), "userns" user + mount + pid namespaces, "none".
 */
export const BOUNDARIES = ['uid', 'userns', 'none'] as const;
export type Boundary = (typeof BOUNDARIES)[number];
/** A node's boundary setting: the best it can give, or none at all. */
export type BoundaryMode = 'auto' | 'none';

export const ISOLATIONS = ['ulimit', 'docker'] as const;
export type Isolation = (typeof ISOLATIONS)[number];

/** Limits in force for one job; declared once, as a table, in core/limits.ts. */
export type { Limits } from './limits.js';

export interface Verdict {
  class: VerdictClass;
  /** Finer cause, e.g. missing_module, syntax_error, cpu_time, pids, open_files, file_size, disk_full, sigsegv. */
  cause: string | null;
  exitCode: number | null;
  /** Signal name such as "SIGKILL", or null. */
  signal: string | null;
  timedOut: boolean;
  /** One sentence: what happened. */
  summary: string;
  evidence: string[];
  hints: string[];
}

export interface HistoryEntry {
  state: JobState;
  /** ISO 8601 UTC. */
  at: string;
  note: string | null;
}

/** Where a job lives on its node, learnt at launch. */
export interface RemoteInfo {
  /** The job folder on the node (absolute, or starting with "~/" for the remote home). */
  dir: string;
  supervisorPid: number | null;
  pid: number | null;
  bootId: string | null;
  /** The trust boundary the job ran behind, as its supervisor recorded it (absent before it existed). */
  boundary?: Boundary | null;
}

/** A job as the ledger stores it and `--json` prints it. */
export interface Job {
  id: string;
  name: string;
  /** Absolute path of the submitted file on the submitting machine. */
  file: string;
  node: string;
  /** GPU indices assigned on the node (empty when none). */
  gpus: number[];
  competition: string | null;
  state: JobState;
  isolation: Isolation;
  image: string | null;
  limits: Limits;
  env: Record<string, string>;
  args: string[];
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  history: HistoryEntry[];
  remote: RemoteInfo | null;
  verdict: Verdict | null;
}

/** Which limit the supervisor itself enforced when it killed the job. */
export type LimitFired = 'timeout' | 'cpu' | 'memory' | null;

/**
 * status.json, written atomically by the supervisor (templates/wrapper.sh) at each change.
 * Times are milliseconds since the epoch on the node's clock.
 */
export interface StatusFile {
  version: 1;
  state: 'starting' | 'running' | 'exited';
  supervisorPid: number;
  pid: number | null;
  pgid: number | null;
  bootId: string;
  startedAtMs: number;
  endedAtMs: number | null;
  /** Exit status as a shell reports it: 0-255, 128+N after signal N. */
  exitCode: number | null;
  /** Signal number that ended the main process, when exitCode > 128. */
  signal: number | null;
  timedOut: boolean;
  cancelled: boolean;
  limitFired: LimitFired;
  /** Whether SIGKILL had to follow SIGTERM after the grace period. */
  killedAfterGrace: boolean;
  /** CPU seconds (user + sys) used by the main process and its reaped children. */
  cpuSeconds: number | null;
  /** cgroup memory/pids accounting in force: "v1", "v2" or null (rlimits + memory watch only). */
  cgroup: 'v1' | 'v2' | null;
  /** OOM kills the memory cgroup counted (null without a memory cgroup). */
  oomKills: number | null;
  /** Times the pids cgroup refused a fork (null without a pids cgroup). */
  pidsRefused: number | null;
  /** Kernel log lines about OOM-killing one of the job's pids, where the kernel log is readable. */
  kernelOom: string[];
  /** The memory cgroup's own peak usage (page cache included), where the kernel reports it. */
  memoryPeakBytes?: number | null;
  /** Whether the supervisor became the child subreaper, so orphans of the job stay in view. */
  subreaper?: boolean;
  /** Processes still alive after the main one ended, killed by the final sweep. */
  leftovers: number;
  /** The trust boundary in force (absent: written before boundaries existed, i.e. none). */
  boundary?: Boundary;
  /** The uid the program ran as under the "uid" boundary, else null. */
  jobUid?: number | null;
}

/** monitor.json, the sampler's running peaks, rewritten atomically as they change. */
export interface MonitorFile {
  version: 1;
  samples: number;
  peakRssBytes: number;
  peakProcs: number;
  peakThreads: number;
  peakOpenFiles: number;
  peakFolderBytes: number;
  peakGpuMemBytes: number | null;
  /** The memory watch (used where no memory cgroup exists) killed the job over --memory. */
  memoryWatchFired: boolean;
  /** Tree RSS that made it fire. */
  memoryWatchRssBytes: number | null;
}

/** One line of samples.jsonl. */
export interface Sample {
  /** ms since the epoch. */
  t: number;
  rssBytes: number;
  /** Percent of one core over the last interval. */
  cpuPct: number;
  procs: number;
  threads: number;
  openFiles: number;
  folderBytes: number;
  gpu: GpuSample[] | null;
}

export interface GpuSample {
  index: number;
  memUsedBytes: number;
  utilPct: number | null;
  /** Memory used by this job's processes on that GPU, when nvidia-smi reports per-process use. */
  jobMemBytes: number | null;
}

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
}
