/**
 * A job's resource peaks set against its limits, as `gpuq show` and `gpuq diagnose` print them
 * ("RSS peaked at 1.98 GiB of the 2 GiB limit (99%)"). Pure: monitor.json, status.json and the
 * limits in, plain rows out. Also reads the kernel's "Killed process" line, whose RSS at the
 * moment of the kill is a peak the sampler may have missed (a hog can die between two samples).
 */
import { formatBytes, formatDuration, formatPercent } from './format.js';
import type { Limits, MonitorFile, StatusFile } from './types.js';

export type PeakKey =
  | 'rss'
  | 'cgroup_mem'
  | 'procs'
  | 'threads'
  | 'open_files'
  | 'gpu_mem'
  | 'folder'
  | 'cpu_time'
  | 'wall_time';

/** One measured peak; values in base units (bytes, counts, seconds). */
export interface Peak {
  key: PeakKey;
  value: number;
  /** The limit it is measured against, or null when none applies. */
  limit: number | null;
  /** value / limit, or null without a limit. */
  ratio: number | null;
  /** The sentence for people: "RSS peaked at 1.98 GiB of the 2 GiB limit (99%)". */
  text: string;
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

function against(
  value: number,
  limit: number | null,
  fmt: (n: number) => string,
): { limit: number | null; ratio: number | null; tail: string } {
  if (limit === null || limit <= 0) return { limit: null, ratio: null, tail: '' };
  const ratio = value / limit;
  return { limit, ratio, tail: ` of the ${fmt(limit)} limit (${formatPercent(ratio)})` };
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
 * Every peak gpuq knows for a job, against its limit where one applies: RSS, processes, threads,
 * open files, GPU memory, folder size, CPU time and wall time. Without monitor.json only the
 * times (from status.json) and a kernel-reported RSS are there.
 */
export function peaksAgainstLimits(input: PeakInput): Peak[] {
  const { monitor, status, limits } = input;
  const out: Peak[] = [];
  const bytes = (n: number) => formatBytes(n);
  const count = (n: number) => String(n);
  const dur = (n: number) => formatDuration(n);

  const sampled = monitor !== null && monitor.samples > 0;
  const kernelRss = Math.max(0, ...parseKernelOom(status?.kernelOom ?? []).map((k) => k.rssBytes));
  const watchRss = monitor?.memoryWatchRssBytes ?? 0;
  const sampledRss = sampled ? monitor.peakRssBytes : 0;
  const rss = Math.max(sampledRss, kernelRss, watchRss);
  if (rss > 0) {
    const a = against(rss, limits.memoryBytes, bytes);
    const when = rss > sampledRss ? ' (when it was killed)' : '';
    out.push({
      key: 'rss',
      value: rss,
      limit: a.limit,
      ratio: a.ratio,
      text: `RSS peaked at ${bytes(rss)}${a.tail}${when}`,
    });
  }
  const cgroupPeak = status?.memoryPeakBytes ?? null;
  if (cgroupPeak !== null && cgroupPeak > 0) {
    const a = against(cgroupPeak, limits.memoryBytes, bytes);
    out.push({
      key: 'cgroup_mem',
      value: cgroupPeak,
      limit: a.limit,
      ratio: a.ratio,
      text: `the memory cgroup (page cache included) peaked at ${bytes(cgroupPeak)}${a.tail}`,
    });
  }
  if (sampled && monitor.peakProcs > 0) {
    const a = against(monitor.peakProcs, limits.pids, count);
    out.push({
      key: 'procs',
      value: monitor.peakProcs,
      limit: a.limit,
      ratio: a.ratio,
      text: `processes peaked at ${monitor.peakProcs}${a.tail}`,
    });
  }
  if (sampled && monitor.peakThreads > 0) {
    out.push({
      key: 'threads',
      value: monitor.peakThreads,
      limit: null,
      ratio: null,
      text: `threads peaked at ${monitor.peakThreads}`,
    });
  }
  if (sampled && monitor.peakOpenFiles > 0) {
    // --files is per process (ulimit -n); the sampler counts descriptors over the whole tree.
    const per = limits.files !== null ? ` (the limit is ${limits.files} per process)` : '';
    out.push({
      key: 'open_files',
      value: monitor.peakOpenFiles,
      limit: limits.files,
      ratio: null,
      text: `open files peaked at ${monitor.peakOpenFiles} over all its processes${per}`,
    });
  }
  if (monitor !== null && monitor.peakGpuMemBytes !== null) {
    const total = input.gpuTotalBytes ?? null;
    const ratio = total !== null && total > 0 ? monitor.peakGpuMemBytes / total : null;
    const of = ratio !== null && total !== null ? ` of the GPU's ${bytes(total)} (${formatPercent(ratio)})` : '';
    out.push({
      key: 'gpu_mem',
      value: monitor.peakGpuMemBytes,
      limit: total,
      ratio,
      text: `GPU memory peaked at ${bytes(monitor.peakGpuMemBytes)}${of}`,
    });
  }
  if (sampled && monitor.peakFolderBytes > 0) {
    out.push({
      key: 'folder',
      value: monitor.peakFolderBytes,
      limit: null,
      ratio: null,
      text: `the job folder grew to ${bytes(monitor.peakFolderBytes)}`,
    });
  }
  if (status?.cpuSeconds !== null && status?.cpuSeconds !== undefined) {
    const a = against(status.cpuSeconds, limits.cpuTimeS, dur);
    out.push({
      key: 'cpu_time',
      value: status.cpuSeconds,
      limit: a.limit,
      ratio: a.ratio,
      text: `used ${dur(status.cpuSeconds)} of CPU time${a.tail}`,
    });
  }
  if (status && status.startedAtMs > 0) {
    const end = status.endedAtMs ?? input.nowMs ?? null;
    if (end !== null && end >= status.startedAtMs) {
      const s = (end - status.startedAtMs) / 1000;
      const a = against(s, limits.timeoutS, dur);
      const verb = status.endedAtMs !== null ? 'ran' : 'has run';
      out.push({
        key: 'wall_time',
        value: s,
        limit: a.limit,
        ratio: a.ratio,
        text: `${verb} ${dur(s)}${a.tail.replace(' limit', ' wall-clock limit')}`,
      });
    }
  }
  return out;
}
