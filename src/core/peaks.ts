/**
 * A job's resource peaks set against its limits, as every page prints them ("memory peaked at
 * 1.98 GiB of the 2 GiB limit (99%), as the memory cgroup measured it"). Pure: monitor.json,
 * status.json and the limits in, plain rows out.
 *
 * One source of truth per figure (`usageOf`): memory is the memory cgroup's high-water mark where
 * there was one, else the sampler's tree RSS; processes and threads (what --pids counts) are the
 * pids cgroup's peak, else the sampler's; the job folder is the largest the sampler measured,
 * its final measurement included. The kernel's OOM-kill RSS and the memory watch's figure are
 * not peaks: the verdict quotes them as evidence, named as what they are. `gpuq show`,
 * `diagnose`, `list --json`, `watch` and `wait` all print `peaksAgainstLimits` / `jobFigures`,
 * so the same job shows the same numbers everywhere.
 */
import { formatBytes, formatDuration, formatPercent } from './format.js';
import { jobDurationMs } from './job.js';
import { durationText } from './present.js';
import type { Job, Limits, MonitorFile, StatusFile, Usage } from './types.js';

export type PeakKey = 'memory' | 'tasks' | 'procs' | 'open_files' | 'gpu_mem' | 'folder' | 'cpu_time' | 'wall_time';

/** Which measurement a peak comes from. */
export type PeakSource = 'cgroup' | 'sampler' | 'supervisor' | 'nvidia-smi';

/** One measured peak; values in base units (bytes, counts, seconds). */
export interface Peak {
  key: PeakKey;
  value: number;
  /** The limit it is measured against, or null when none applies. */
  limit: number | null;
  /** value / limit, or null without a limit. */
  ratio: number | null;
  /** The sentence for people: "memory peaked at 1.98 GiB of the 2 GiB limit (99%), …". */
  text: string;
  /** Which measurement it is (the cgroup's own peak, the sampler's, the supervisor's clock…). */
  source: PeakSource;
}

/** What the kernel said about one OOM-killed process. */
export interface KernelOomKill {
  pid: number;
  name: string;
  /** anon + file + shmem RSS when it was killed. */
  rssBytes: number;
  /** The kill happened inside a memory cgroup's limit (CONSTRAINT_MEMCG / "Memory cgroup out of memory"). */
  cgroup: boolean;
}

const KILLED = /Killed process (\d+) \(([^)]*)\)(.*)$/;

/** Kilobytes of one `name:NNNkB` field of a kernel OOM line, 0 when absent. */
function kbField(text: string, name: string): number {
  const m = new RegExp(`\\b${name}:(\\d+)kB`).exec(text);
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * Parses the kernel's "Out of memory: Killed process PID (NAME) total-vm:…kB, anon-rss:…kB,
 * file-rss:…kB, shmem-rss:…kB" lines; other lines (the oom-kill:constraint=… line) are skipped.
 */
export function parseKernelOom(lines: readonly string[]): KernelOomKill[] {
  const kills: KernelOomKill[] = [];
  for (const line of lines) {
    const m = KILLED.exec(line);
    if (!m) continue;
    const rest = m[3] as string;
    kills.push({
      pid: Number(m[1]),
      name: m[2] as string,
      rssBytes: kbField(rest, 'anon-rss') + kbField(rest, 'file-rss') + kbField(rest, 'shmem-rss'),
      cgroup: /Memory cgroup out of memory/.test(line) || lines.some((l) => /CONSTRAINT_MEMCG/.test(l)),
    });
  }
  return kills;
}

/** One sentence for a kernel OOM kill: "the kernel OOM killer killed python3 (pid 8580) at 206 MiB RSS". */
export function describeKernelOom(kill: KernelOomKill): string {
  const who = kill.cgroup ? "the kernel killed it at the memory cgroup's limit" : 'the kernel OOM killer killed it';
  return `${who}: ${kill.name} (pid ${kill.pid}) held ${formatBytes(kill.rssBytes)} RSS`;
}

/** A count or size from a file the job may have written, as a finite non-negative number, or null. */
function figure(n: number | null | undefined): number | null {
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : null;
}

/**
 * The one measurement of each peak, from the job folder's status.json and monitor.json (see the
 * module comment for which wins); null when neither file measured anything. Recorded in the
 * ledger with the verdict (`job.usage`), so the figures outlive the job folder.
 */
export function usageOf(monitor: MonitorFile | null, status: StatusFile | null): Usage | null {
  if (monitor === null && status === null) return null;
  const sampled = monitor !== null && monitor.samples > 0 ? monitor : null;
  const positive = (n: number | null | undefined): number | null => {
    const f = figure(n);
    return f !== null && f > 0 ? f : null;
  };
  const cgroupMem = positive(status?.memoryPeakBytes);
  const sampledMem = positive(sampled?.peakRssBytes);
  const cgroupTasks = positive(status?.pidsPeak);
  // A sample's `threads` is the sum of each process's thread count, its main thread included:
  // processes and threads together, at one moment.
  const sampledTasks = positive(sampled?.peakThreads);
  return {
    memoryBytes: cgroupMem ?? sampledMem,
    memorySource: cgroupMem !== null ? 'cgroup' : sampledMem !== null ? 'sampler' : null,
    tasks: cgroupTasks ?? sampledTasks,
    tasksSource: cgroupTasks !== null ? 'cgroup' : sampledTasks !== null ? 'sampler' : null,
    procs: positive(sampled?.peakProcs),
    openFiles: positive(sampled?.peakOpenFiles),
    folderBytes: positive(sampled?.peakFolderBytes),
    gpuMemBytes: figure(monitor?.peakGpuMemBytes),
    cpuSeconds: figure(status?.cpuSeconds),
    timedOut: status?.timedOut === true,
    // pidsRefused is null exactly when no pids cgroup held the job.
    noPidsCgroup: status !== null && status.pidsRefused === null,
  };
}

/** The limit part of a peak's sentence: " of the 2 GiB limit (99%)", and the ratio. */
function against(
  value: number,
  limit: number | null,
  fmt: (n: number) => string,
  overWhy: string,
): { limit: number | null; ratio: number | null; tail: string } {
  if (limit === null || limit <= 0) return { limit: null, ratio: null, tail: '' };
  const ratio = value / limit;
  // A figure over its limit says why it could be, rather than looking like a broken limit.
  const why = ratio > 1 && formatPercent(ratio) !== '100%' ? `: ${overWhy}` : '';
  return { limit, ratio, tail: ` of the ${fmt(limit)} limit (${formatPercent(ratio)}${why})` };
}

/** A job's run as the supervisor measured it (ms since the epoch, node clock). */
export interface RunSpan {
  startMs: number | null;
  /** The end of the job's main process; null while it runs (or when it was never recorded). */
  endMs: number | null;
  /** Now, for a job still running; null to leave its wall time out. */
  nowMs: number | null;
}

/**
 * Every peak of a job against its limit where one applies, from its one measurement of each
 * (`usageOf`) and the supervisor's start and end. The function every page prints peaks with.
 */
export function peaksOf(
  usage: Usage | null,
  limits: Limits,
  span: RunSpan,
  gpuTotalBytes: number | null = null,
): Peak[] {
  const out: Peak[] = [];
  const bytes = (n: number) => formatBytes(n);
  const count = (n: number) => String(n);
  const dur = (n: number) => formatDuration(n);
  const u = usage;
  if (u?.memoryBytes != null && u.memorySource !== null) {
    const cgroup = u.memorySource === 'cgroup';
    const a = against(
      u.memoryBytes,
      limits.memoryBytes,
      bytes,
      cgroup
        ? 'the cgroup may pass its limit by a few pages before it reclaims or kills'
        : 'the sum of RSS counts memory its processes share once per process, and the memory watch acts on the next sample',
    );
    out.push({
      key: 'memory',
      value: u.memoryBytes,
      limit: a.limit,
      ratio: a.ratio,
      text: cgroup
        ? `memory peaked at ${bytes(u.memoryBytes)}${a.tail}, as the memory cgroup measured it (page cache included)`
        : `memory peaked at ${bytes(u.memoryBytes)}${a.tail}, as sampled (the RSS of its processes)`,
      source: u.memorySource,
    });
  }
  if (u?.tasks != null && u.tasksSource !== null) {
    const cgroup = u.tasksSource === 'cgroup';
    const a = against(
      u.tasks,
      limits.pids,
      count,
      u.noPidsCgroup
        ? 'no pids cgroup held the job, and ulimit -u does not hold back root'
        : 'tasks moved into the pids cgroup are not refused, only new ones',
    );
    const how = cgroup ? 'as the pids cgroup counted them' : 'sampled';
    out.push({
      key: 'tasks',
      value: u.tasks,
      limit: a.limit,
      ratio: a.ratio,
      text: `processes and threads peaked at ${u.tasks}${a.tail} (${how}; --pids counts both)`,
      source: u.tasksSource,
    });
  }
  if (u?.procs != null) {
    out.push({
      key: 'procs',
      value: u.procs,
      limit: null,
      ratio: null,
      text: `processes alone peaked at ${u.procs}`,
      source: 'sampler',
    });
  }
  if (u?.openFiles != null) {
    // --files is per process (ulimit -n); the sampler counts descriptors over the whole tree.
    const per = limits.files !== null ? ` (the limit is ${limits.files} per process)` : '';
    out.push({
      key: 'open_files',
      value: u.openFiles,
      limit: limits.files,
      ratio: null,
      text: `open files peaked at ${u.openFiles} over all its processes${per}`,
      source: 'sampler',
    });
  }
  if (u?.gpuMemBytes != null) {
    const total = gpuTotalBytes;
    const ratio = total !== null && total > 0 ? u.gpuMemBytes / total : null;
    const of = ratio !== null && total !== null ? ` of the GPU's ${bytes(total)} (${formatPercent(ratio)})` : '';
    out.push({
      key: 'gpu_mem',
      value: u.gpuMemBytes,
      limit: total,
      ratio,
      text: `GPU memory peaked at ${bytes(u.gpuMemBytes)}${of}`,
      source: 'nvidia-smi',
    });
  }
  if (u?.folderBytes != null) {
    out.push({
      key: 'folder',
      value: u.folderBytes,
      limit: null,
      ratio: null,
      text: `the job folder grew to ${bytes(u.folderBytes)}`,
      source: 'sampler',
    });
  }
  if (u?.cpuSeconds != null) {
    const a = against(
      u.cpuSeconds,
      limits.cpuTimeS,
      dur,
      'the limit holds each process, and this is all of them together',
    );
    out.push({
      key: 'cpu_time',
      value: u.cpuSeconds,
      limit: a.limit,
      ratio: a.ratio,
      text: `used ${dur(u.cpuSeconds)} of CPU time${a.tail}`,
      source: 'supervisor',
    });
  }
  const ms = spanMs(span);
  if (ms !== null) {
    const s = ms / 1000;
    const a = against(
      s,
      limits.timeoutS,
      dur,
      u?.timedOut
        ? `SIGTERM came at the limit, then it had up to the ${dur(limits.graceS)} grace period to stop`
        : "the supervisor's clock starts before the program does",
    );
    const verb = span.endMs !== null ? 'ran' : 'has run';
    out.push({
      key: 'wall_time',
      value: s,
      limit: a.limit,
      ratio: a.ratio,
      text: `${verb} ${durationText(ms)}${a.tail.replace(' limit', ' wall-clock limit')}`,
      source: 'supervisor',
    });
  }
  return out;
}

/** Milliseconds from start to end (or to now while running), never negative; null when unknown. */
function spanMs(span: RunSpan): number | null {
  if (span.startMs === null) return null;
  const end = span.endMs ?? span.nowMs;
  if (end === null) return null;
  return Math.max(0, end - span.startMs);
}

export interface PeakInput {
  monitor: MonitorFile | null;
  status: StatusFile | null;
  limits: Limits;
  /** The node's clock now (ms), for the wall time of a job still running; null to leave it out. */
  nowMs?: number | null;
  /** Memory of the GPUs the job was given, together, when the node reports it. */
  gpuTotalBytes?: number | null;
}

/**
 * Every peak gpuq knows for a job from its folder's files, against its limit where one applies
 * (`usageOf`, then `peaksOf`): memory, processes and threads, processes, open files, GPU memory,
 * folder size, CPU time and wall time. For a job still running (show, diagnose).
 */
export function peaksAgainstLimits(input: PeakInput): Peak[] {
  const { status } = input;
  return peaksOf(
    usageOf(input.monitor, status),
    input.limits,
    {
      startMs: status && status.startedAtMs > 0 ? status.startedAtMs : null,
      endMs: status?.endedAtMs ?? null,
      nowMs: input.nowMs ?? null,
    },
    input.gpuTotalBytes ?? null,
  );
}

/** A job's duration and peaks, as `--json` prints them beside the job. */
export interface JobFigures {
  /** From the supervisor's start to its end (or to now while running); null when unknown. */
  durationMs: number | null;
  /** Null when nothing was recorded (a job that never ran, or one recorded before peaks were). */
  peaks: Peak[] | null;
}

/**
 * A job's duration and peaks from the ledger alone: the supervisor's start and end, and the
 * peaks recorded with its verdict (`job.usage`). Every command prints a finished job's figures
 * from here, so `list`, `show`, `diagnose`, `watch` and `wait` agree.
 */
export function jobFigures(job: Job, nowMs: number): JobFigures {
  const durationMs = jobDurationMs(job, nowMs);
  if (job.usage == null) return { durationMs, peaks: null };
  const start = job.startedAt ? Date.parse(job.startedAt) : Number.NaN;
  const end = job.endedAt ? Date.parse(job.endedAt) : Number.NaN;
  const peaks = peaksOf(job.usage, job.limits, {
    startMs: Number.isFinite(start) ? start : null,
    endMs: Number.isFinite(end) ? end : null,
    nowMs: null,
  });
  return { durationMs, peaks };
}

/** A job with its duration and peaks beside it: what `list`, `show`, `wait` and `submit --wait` print as JSON. */
export function withFigures<J extends Job>(job: J, nowMs: number): J & JobFigures {
  return { ...job, ...jobFigures(job, nowMs) };
}
