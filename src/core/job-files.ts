/**
 * The shapes of the JSON files a job folder holds (templates/README.md describes each file).
 * Behind a trust boundary the job cannot write these files; without one (boundary "none") it can,
 * so whatever is read back from status.json, monitor.json or samples.jsonl is checked against
 * these shapes first, and a file of the wrong shape counts as absent evidence: never a crash.
 */

import {
  arr,
  bool,
  type Equal,
  type Expect,
  type Infer,
  int,
  literal,
  nullable,
  num,
  obj,
  optional,
  parseJsonAs,
  str,
} from './shape.js';
import type { GpuSample, MonitorFile, Sample, StatusFile } from './types.js';

/** status.json, written by the supervisor (templates/wrapper.sh) at each change. */
export const statusFileShape = obj({
  version: literal(1),
  state: literal('starting', 'running', 'exited'),
  supervisorPid: int,
  pid: nullable(int),
  pgid: nullable(int),
  bootId: str,
  startedAtMs: int,
  endedAtMs: nullable(int),
  exitCode: nullable(int),
  signal: nullable(int),
  timedOut: bool,
  cancelled: bool,
  limitFired: nullable(literal('timeout', 'cpu', 'memory')),
  killedAfterGrace: bool,
  cpuSeconds: nullable(num),
  cgroup: nullable(literal('v1', 'v2')),
  oomKills: nullable(int),
  pidsRefused: nullable(int),
  kernelOom: arr(str),
  memoryPeakBytes: optional(nullable(int)),
  subreaper: optional(bool),
  leftovers: int,
  boundary: optional(literal('uid', 'userns', 'none')),
  jobUid: optional(nullable(int)),
});

/** monitor.json, the sampler's running peaks (templates/monitor.py). */
export const monitorFileShape = obj({
  version: literal(1),
  samples: int,
  peakRssBytes: int,
  peakProcs: int,
  peakThreads: int,
  peakOpenFiles: int,
  peakFolderBytes: int,
  peakGpuMemBytes: nullable(int),
  memoryWatchFired: bool,
  memoryWatchRssBytes: nullable(int),
});

/** One GPU in a sample. */
export const gpuSampleShape = obj({
  index: int,
  memUsedBytes: int,
  utilPct: nullable(num),
  jobMemBytes: nullable(int),
});

/** One line of samples.jsonl (templates/monitor.py). */
export const sampleShape = obj({
  t: int,
  rssBytes: int,
  cpuPct: num,
  procs: int,
  threads: int,
  openFiles: int,
  folderBytes: int,
  gpu: nullable(arr(gpuSampleShape)),
});

// The shapes and the interfaces of core/types describe the same files: the compiler checks it.
export type StatusShapeMatches = Expect<Equal<Infer<typeof statusFileShape>, StatusFile>>;
export type MonitorShapeMatches = Expect<Equal<Infer<typeof monitorFileShape>, MonitorFile>>;
export type SampleShapeMatches = Expect<Equal<Infer<typeof sampleShape>, Sample>>;
export type GpuSampleShapeMatches = Expect<Equal<Infer<typeof gpuSampleShape>, GpuSample>>;

/** status.json's text as a StatusFile, or null when it is empty, torn or of the wrong shape. */
export function parseStatusFile(text: string | undefined): StatusFile | null {
  return parseJsonAs(statusFileShape, text);
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
