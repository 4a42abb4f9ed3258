/**
 * Fixed data for the watch view's tests: a job, samples and a verdict at pinned times, so
 * frames are the same on every run.
 */
import type { Job, Sample, Verdict } from '../../src/core/types.js';
import { builtinLimits } from '../../src/core/limits.js';

/** The pinned clock: 90 s after the job started. */
export const T0 = Date.parse('2026-01-02T03:04:05.000Z');
export const NOW = T0 + 90_000;
export const MiB = 1024 * 1024;

/** A running job with a 200 MiB memory limit and 64 pids on node "gpu1", GPU 0. */
export function runningJob(over: Partial<Job> = {}): Job {
  return {
    id: 'abc12345',
    name: 'train.py',
    file: '/home/u/train.py',
    node: 'gpu1',
    gpus: [0],
    competition: null,
    state: 'running',
    isolation: 'ulimit',
    image: null,
    limits: { ...builtinLimits(), timeoutS: 600, memoryBytes: 200 * MiB, pids: 64, fileSizeBytes: null, gpus: 1 },
    env: {},
    args: [],
    createdAt: new Date(T0 - 1000).toISOString(),
    startedAt: new Date(T0).toISOString(),
    endedAt: null,
    history: [{ state: 'running', at: new Date(T0).toISOString(), note: null }],
    remote: { dir: '/work/jobs/abc12345', supervisorPid: 10, pid: 11, bootId: 'b' },
    verdict: null,
    ...over,
  };
}

/** A sample `i` seconds after the start, RSS growing 10 MiB a second. */
export function sample(i: number, over: Partial<Sample> = {}): Sample {
  return {
    t: T0 + i * 1000,
    rssBytes: (20 + 10 * i) * MiB,
    cpuPct: 95,
    procs: 3,
    threads: 5,
    openFiles: 7,
    folderBytes: 12 * 1024,
    gpu: [{ index: 0, memUsedBytes: 1024 * MiB, utilPct: 40, jobMemBytes: 900 * MiB }],
    ...over,
  };
}

/** The verdict of a job killed at its memory limit. */
export const OOM: Verdict = {
  class: 'oom',
  cause: 'cgroup',
  exitCode: 137,
  signal: 'SIGKILL',
  timedOut: false,
  summary: 'Killed for memory at the memory limit of 200 MiB.',
  evidence: ['the memory cgroup counted 1 OOM kill', 'RSS peaked at 205 MiB of the 200 MiB limit'],
  hints: ['raise the limit: gpuq submit --memory 400m', 'use smaller dtypes'],
};

/** The job, done with `verdict`, 95 s after its start. */
export function doneJob(verdict: Verdict = OOM): Job {
  return runningJob({ state: 'done', endedAt: new Date(T0 + 95_000).toISOString(), verdict });
}
