/**
 * The shapes of the JSON files a job folder holds (templates/README.md describes each file).
 * Behind a trust boundary the job cannot write these files; without one (boundary "none") it can,
 * so whatever is read back from status.json, monitor.json or samples.jsonl is checked against
 * these shapes first, and a file of the wrong shape counts as absent evidence: never a crash.
 */

import { arr, bool, int, literal, nullable, num, obj, optional, parseJsonAs, str } from './shape.js';
import type { MonitorFile, QueueFile, Sample, StatusFile } from './types.js';

/**
 * status.json, written atomically by the supervisor (templates/wrapper.sh) at each change. Times
 * are milliseconds since the epoch on the node's clock. `StatusFile` (core/types) is inferred from it.
 */
export const statusFileShape = obj({
  version: literal(1),
  /** `grading`: the program ended and templates/grade.py runs (issue 13). */
  state: literal('starting', 'queued', 'running', 'grading', 'exited'),
  supervisorPid: int,
  pid: nullable(int),
  pgid: nullable(int),
  bootId: str,
  startedAtMs: int,
  endedAtMs: nullable(int),
  /** Exit status as a shell reports it: 0-255, 128+N after signal N. */
  exitCode: nullable(int),
  /** Signal number that ended the main process, when exitCode > 128. */
  signal: nullable(int),
  timedOut: bool,
  cancelled: bool,
  /** Which limit the supervisor itself enforced when it killed the job. */
  limitFired: nullable(literal('timeout', 'cpu', 'memory')),
  /** Whether SIGKILL had to follow SIGTERM after the grace period. */
  killedAfterGrace: bool,
  /** CPU seconds (user + sys) used by the main process and its reaped children. */
  cpuSeconds: nullable(num),
  /** cgroup memory/pids accounting in force: "v1", "v2" or null (rlimits + memory watch only). */
  cgroup: nullable(literal('v1', 'v2')),
  /** OOM kills the memory cgroup counted (null without a memory cgroup). */
  oomKills: nullable(int),
  /** Times the pids cgroup refused a fork (null without a pids cgroup). */
  pidsRefused: nullable(int),
  /** Kernel log lines about OOM-killing one of the job's pids, where the kernel log is readable. */
  kernelOom: arr(str),
  /** The memory cgroup's own peak usage (page cache included), where the kernel reports it. */
  memoryPeakBytes: optional(nullable(int)),
  /** Whether the supervisor became the child subreaper, so orphans of the job stay in view. */
  subreaper: optional(bool),
  /** Processes still alive after the main one ended, killed by the final sweep. */
  leftovers: int,
  /** The trust boundary in force (absent: written before boundaries existed, i.e. none). */
  boundary: optional(literal('uid', 'userns', 'container', 'none')),
  /** The uid the program ran as under the "uid" boundary, else null. */
  jobUid: optional(nullable(int)),
  /** When the wall-clock limit fired (its SIGTERM), ms since the epoch; absent in older files. */
  limitFiredAtMs: optional(nullable(int)),
  /** When the kernel logged the job's first OOM kill (its log time, converted), ms since the epoch. */
  kernelOomAtMs: optional(nullable(int)),
  /** The pids cgroup's own peak (processes and threads together), where the kernel reports it. */
  pidsPeak: optional(nullable(int)),
  /** The GPU indices the node leased to the job (empty while queued or without GPUs). */
  gpus: optional(arr(int)),
  /** When the job entered the node's GPU queue (null: it never waited). */
  queuedAtMs: optional(nullable(int)),
  /** --isolation docker: the container's name, its exit status and OOMKilled (`docker inspect`). */
  container: optional(nullable(str)),
  containerExitCode: optional(nullable(int)),
  containerOomKilled: optional(nullable(bool)),
});

/** A process of the job that the per-process CPU-time limit (RLIMIT_CPU) most likely stopped. */
export const cpuLimitHitShape = obj({
  pid: int,
  /** Its command name as the kernel shows it (job-controlled text). */
  name: str,
  /** Its CPU time (user + system) when last seen, s. */
  cpuSeconds: num,
});

/** One GPU of the node as a queued job's waiter saw it (queue.json). */
export const queueGpuShape = obj({
  index: int,
  state: literal('free', 'held', 'orphan', 'foreign'),
  job: nullable(str),
  submitter: nullable(str),
  pid: nullable(int),
  user: nullable(str),
  sinceMs: nullable(int),
  timeoutS: nullable(int),
  memMiB: nullable(num),
});

/** queue.json, written by the queued job's waiter (templates/queue.py) while it waits. */
export const queueFileShape = obj({
  version: literal(1),
  /** 1 = the head of the node's queue. */
  position: int,
  need: int,
  priority: int,
  /** The tickets ahead, in order (at most 200). */
  ahead: arr(obj({ gpus: int, timeoutS: int, priority: int })),
  aheadCount: int,
  /** Live tickets in the node's queue, this one included. */
  length: int,
  gpus: arr(queueGpuShape),
  updatedAtMs: int,
});

/** queue.json's text as a QueueFile, or null when it is absent, torn or of the wrong shape. */
export function parseQueueFile(text: string | undefined): QueueFile | null {
  return parseJsonAs(queueFileShape, text);
}

/** monitor.json, the sampler's running peaks (templates/monitor.py), rewritten atomically as they change. */
export const monitorFileShape = obj({
  version: literal(1),
  samples: int,
  peakRssBytes: int,
  peakProcs: int,
  peakThreads: int,
  peakOpenFiles: int,
  peakFolderBytes: int,
  peakGpuMemBytes: nullable(int),
  /** The memory watch (used where no memory cgroup exists) killed the job over --memory. */
  memoryWatchFired: bool,
  /** Tree RSS that made it fire. */
  memoryWatchRssBytes: nullable(int),
  /** When the monitor first saw the memory cgroup's oom_kill counter rise, ms since the epoch. */
  firstOomKillAtMs: optional(nullable(int)),
  /** The process that vanished at the per-process --cpu-time limit, if one did. */
  cpuLimitHit: optional(nullable(cpuLimitHitShape)),
});

/** One GPU in a sample. */
export const gpuSampleShape = obj({
  index: int,
  memUsedBytes: int,
  utilPct: nullable(num),
  /** Memory used by this job's processes on that GPU, when nvidia-smi reports per-process use. */
  jobMemBytes: nullable(int),
});

/** One line of samples.jsonl (templates/monitor.py). */
export const sampleShape = obj({
  /** ms since the epoch. */
  t: int,
  rssBytes: int,
  /** Percent of one core over the last interval. */
  cpuPct: num,
  procs: int,
  threads: int,
  openFiles: int,
  folderBytes: int,
  gpu: nullable(arr(gpuSampleShape)),
});

/** status.json's text as a StatusFile, or null when it is empty, torn or of the wrong shape. */
export function parseStatusFile(text: string | undefined): StatusFile | null {
  return parseJsonAs(statusFileShape, text);
}

/**
 * The status.json a launch or an adoption read, as a StatusFile whatever it held. Where the job
 * has no boundary it can replace status.json the moment it starts, and the launch may read that
 * forgery: a file of the wrong shape must neither fail the submit (the job runs) nor put an
 * ill-typed field in the ledger (which would then refuse every command). So a well-formed file is
 * taken as it is; otherwise only what is well-typed is kept, the rest unknown (null), and the
 * verdict comes later from the supervisor's end as for any job. Null when it is not JSON at all.
 */
export function launchStatusOf(text: string): StatusFile | null {
  const whole = parseStatusFile(text);
  if (whole !== null) return whole;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  const r = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const int = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) ? v : null);
  const states = ['starting', 'queued', 'running', 'grading', 'exited'] as const;
  const state = states.find((x) => x === r.state) ?? 'running';
  return {
    version: 1,
    state,
    supervisorPid: int(r.supervisorPid) ?? 0,
    pid: int(r.pid),
    pgid: int(r.pgid),
    bootId: typeof r.bootId === 'string' ? r.bootId : '',
    startedAtMs: int(r.startedAtMs) ?? 0,
    endedAtMs: null,
    exitCode: null,
    signal: null,
    timedOut: false,
    cancelled: false,
    limitFired: null,
    killedAfterGrace: false,
    cpuSeconds: null,
    cgroup: null,
    oomKills: null,
    pidsRefused: null,
    kernelOom: [],
    leftovers: 0,
    gpus: Array.isArray(r.gpus) ? r.gpus.filter((g): g is number => int(g) !== null) : [],
  };
}

/** monitor.json's text as a MonitorFile, or null when it is empty, torn or of the wrong shape. */
export function parseMonitorFile(text: string | undefined): MonitorFile | null {
  return parseJsonAs(monitorFileShape, text);
}

/** One line of samples.jsonl as a Sample, or null when it is not one (a torn last line, say). */
export function parseSampleLine(line: string): Sample | null {
  return parseJsonAs(sampleShape, line);
}

/** Every well-formed sample in a chunk of samples.jsonl, in order; other lines are skipped. */
export function parseSampleLines(text: string | undefined): Sample[] {
  const out: Sample[] = [];
  for (const line of (text ?? '').split('\n')) {
    const s = parseSampleLine(line);
    if (s !== null) out.push(s);
  }
  return out;
}
