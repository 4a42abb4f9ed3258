/**
 * The shape of a job as the ledger stores it. The ledger is a file people can edit and tools can
 * damage; a job with a missing or mistyped field must be refused with its name and the field, not
 * crash `list` three calls later. Built from the shape combinators (core/shape), which are pure and
 * cheap: the check runs on every read of the live file.
 */

import { LIMITS, type LimitKey } from './limits.js';
import {
  arr,
  bool,
  leaf,
  nullable,
  num,
  obj,
  oneOf,
  optional,
  pathText,
  record,
  type Shape,
  shown,
  str,
} from './shape.js';
import { BOUNDARIES, ISOLATIONS, JOB_STATES, type Limits, VERDICT_CLASSES } from './types.js';

/** The limits in force for a job (base units; null = unlimited), one field per row of the limits table. */
export const limitsShape = obj(
  Object.fromEntries(LIMITS.map((l) => [l.key, l.nullable ? nullable(num) : num])) as {
    [K in LimitKey]: Shape<Limits[K]>;
  },
);

/** One figure a grader reported: results.jsonl values are numbers, strings, booleans or null. */
export const metricValue: Shape<number | string | boolean | null> = leaf(
  'a number, string, true/false or null',
  (v) => v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)),
);

/**
 * One grading of a job (issue 13): the node's grading step or `gpuq grade` wrote it; every grading
 * is kept in `gradings`, newest last, and the newest decides the verdict. Fingerprints are those of
 * templates/fingerprint.py ("sha256:<hex>"), null where the folder was not configured.
 */
export const gradingShape = obj({
  /** When the grader ended (ISO 8601 UTC, the node's clock). */
  at: str,
  class: oneOf(['succeeded', 'rejected', 'grading_failed'] as const),
  /** submission_missing, submission_invalid, grader_error, grader_timeout, grader_oom, bad_results; null when graded. */
  cause: nullable(str),
  score: nullable(num),
  metrics: record(metricValue),
  /** The grader's message.txt (exit 43) or a note of gpuq's, one printable line, bounded. */
  message: nullable(str),
  graderExit: nullable(num),
  dataFingerprint: nullable(str),
  answersFingerprint: nullable(str),
  /** The submission file as checked before the grader saw it, or null where there was none. */
  submission: nullable(obj({ bytes: num, sha256: str, crlf: bool, encoding: str })),
  /** Its folder's number N (gradings/N on the node), where the node's status.json said so; older records lack it. */
  number: optional(num),
});

/** A job's verdict, once it is done (the type `Verdict` of core/types is inferred from it). */
export const verdictShape = obj({
  class: oneOf(VERDICT_CLASSES),
  /** Finer cause, e.g. missing_module, syntax_error, cpu_time, pids, open_files, file_size, disk_full, sigsegv. */
  cause: nullable(str),
  exitCode: nullable(num),
  /** Signal name such as "SIGKILL", or null. */
  signal: nullable(str),
  timedOut: bool,
  /** One sentence: what happened. */
  summary: str,
  evidence: arr(str),
  hints: arr(str),
  /** The grader's score, where the job was graded (absent or null otherwise). */
  score: optional(nullable(num)),
  /** The grader's other figures (results.jsonl fields besides score), where the job was graded. */
  metrics: optional(nullable(record(metricValue))),
});

/** One change of a job's state. */
export const historyEntryShape = obj({
  state: oneOf(JOB_STATES),
  /** ISO 8601 UTC. */
  at: str,
  note: nullable(str),
});

/** Where a job lives on its node, learnt at launch. */
export const remoteInfoShape = obj({
  /** The job folder on the node (absolute, or starting with "~/" for the remote home). */
  dir: str,
  supervisorPid: nullable(num),
  pid: nullable(num),
  bootId: nullable(str),
  /** The trust boundary the job ran behind, as its supervisor recorded it (absent before it existed). */
  boundary: optional(nullable(oneOf(BOUNDARIES))),
  /** On a Slurm node: the Slurm job id sbatch gave it (absent elsewhere). */
  slurmJobId: optional(str),
});

/**
 * A finished job's resource peaks, as measured once, from the job folder's final status.json and
 * monitor.json (core/peaks.ts `usageOf`): every page prints its peaks from this one record. Each
 * figure is null where nothing measured it; a `...Source` says which measurement it is.
 */
export const usageShape = obj({
  /** Memory peak (bytes): the memory cgroup's high-water mark where there was one, else the sampled tree RSS. */
  memoryBytes: nullable(num),
  memorySource: nullable(oneOf(['cgroup', 'sampler'] as const)),
  /** Processes and threads together (what --pids counts): the pids cgroup's peak, else the sampled peak. */
  tasks: nullable(num),
  tasksSource: nullable(oneOf(['cgroup', 'sampler'] as const)),
  /** Processes alone, sampled. */
  procs: nullable(num),
  openFiles: nullable(num),
  /** The job folder's size: the largest the sampler saw, its final measurement included. */
  folderBytes: nullable(num),
  gpuMemBytes: nullable(num),
  /** CPU seconds of the job (the supervisor's). */
  cpuSeconds: nullable(num),
  /** The wall-clock limit fired (a run past the limit is its grace period). */
  timedOut: bool,
  /** The job ran without a pids cgroup (only ulimit -u held it). */
  noPidsCgroup: bool,
});

/**
 * A job as the ledger stores it and `--json` prints it (unknown extra fields are kept). The type
 * `Job` of core/types is inferred from this shape, so the check and the type cannot drift apart.
 */
export const jobShape = obj({
  id: str,
  name: str,
  /** Absolute path of the submitted file on the submitting machine. */
  file: str,
  node: str,
  /** GPU indices assigned on the node (empty when none). */
  gpus: arr(num),
  competition: nullable(str),
  state: oneOf(JOB_STATES),
  isolation: oneOf(ISOLATIONS),
  image: nullable(str),
  limits: limitsShape,
  env: record(str),
  args: arr(str),
  createdAt: str,
  startedAt: nullable(str),
  endedAt: nullable(str),
  history: arr(historyEntryShape),
  remote: nullable(remoteInfoShape),
  verdict: nullable(verdictShape),
  /** The peaks recorded with the verdict (absent before the job ended, or in older ledgers). */
  usage: optional(nullable(usageShape)),
  /** `--priority`: higher runs first in its node's GPU queue (absent: 0, jobs before queues). */
  priority: optional(num),
  /** While queued: its place on the node as last seen (the node's queue is the truth). */
  queue: optional(nullable(obj({ position: num, reason: str, estimatedStart: nullable(str) }))),
  /**
   * What `gpuq rerun` needs that the rest does not say: the kept copy of the program as submitted
   * (its SHA-256, naming GPUQ_HOME/programs/<sha256>, and its size) and the node asked for with
   * `--node` (null: gpuq chose), and how many `--include` paths it had (absent: none; the included
   * files are not kept). Absent for jobs submitted before programs were kept.
   */
  kept: optional(nullable(obj({ sha256: str, bytes: num, node: nullable(str), included: optional(num) }))),
  /** The newest grading's score and metrics, copied up for `list`, `results` and scripts (absent: not graded). */
  score: optional(nullable(num)),
  metrics: optional(nullable(record(metricValue))),
  /** Every grading of the job, oldest first (absent: never graded). */
  gradings: optional(arr(gradingShape)),
});

/**
 * Why a value read from the ledger is not a usable job ('field "limits.timeoutS" is missing'),
 * or null when it is one. Callers name the file and the job around it.
 */
export function jobShapeProblem(value: unknown): string | null {
  const p = jobShape.test(value);
  if (p === null) return null;
  if (p.path.length === 0) return 'it is not an object';
  const field = `field "${pathText(p)}"`;
  return p.found === undefined ? `${field} is missing` : `${field} has a value of the wrong kind (${shown(p.found)})`;
}
