/**
 * Formatting for people (sizes, durations, option values) and peaks against limits.
 */
import { describe, expect, it } from 'vitest';
import { clip, formatBytes, formatDuration, formatPercent, formatSizeOption, plural } from '../../src/core/format.js';
import { jobDurationMs, withSupervisorTimes } from '../../src/core/job.js';
import { jobFigures, parseKernelOom, peaksAgainstLimits, peaksOf, usageOf } from '../../src/core/peaks.js';
import type { Job } from '../../src/core/types.js';
import { parseDuration, parseSize } from '../../src/core/units.js';
import { exited, GiB, LIMITS, MiB, monitor } from '../helpers/classify-fixtures.js';

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [512, '512 B'],
    [1024, '1 KiB'],
    [2 * GiB, '2 GiB'],
    [2_125_824_819, '1.98 GiB'],
    [1.5 * MiB, '1.5 MiB'],
    [1023.999 * MiB, '1 GiB'],
  ])('%d → %s', (n, s) => expect(formatBytes(n)).toBe(s));
  it('says ? for nonsense', () => expect(formatBytes(-1)).toBe('? B'));
});

describe('formatDuration and formatSizeOption parse back', () => {
  it.each([
    [0, '0s'],
    [0.36, '360ms'],
    [45, '45s'],
    [90, '1m30s'],
    [3600, '1h'],
    [5400, '1h30m'],
    [90000, '1d1h'],
  ])('%d s → %s', (s, text) => {
    expect(formatDuration(s)).toBe(text);
    if (s >= 1) expect(parseDuration(text, '--timeout')).toBe(s);
  });
  it.each([
    [400 * MiB, '400m'],
    [4 * GiB, '4g'],
    [1.5 * GiB, '1.5g'],
  ])('%d B → %s', (b, text) => {
    expect(formatSizeOption(b)).toBe(text);
    expect(parseSize(text, '--memory')).toBe(b);
  });
});

describe('small helpers', () => {
  it('formatPercent, plural', () => {
    expect(formatPercent(0.994)).toBe('99%');
    expect(plural(1, 'OOM kill')).toBe('1 OOM kill');
    expect(plural(3, 'process', 'processes')).toBe('3 processes');
  });
  it('clip keeps short text, cuts long text at a sentence end or with an ellipsis', () => {
    expect(clip('  short  ')).toBe('short');
    expect(clip(`${'A'.repeat(100)}. ${'B'.repeat(100)}`)).toBe(`${'A'.repeat(100)}.`);
    const cut = clip('x'.repeat(300));
    expect(cut.length).toBe(160);
    expect(cut.endsWith('…')).toBe(true);
  });
});

describe('parseKernelOom', () => {
  it('reads pid, name, RSS and whether a cgroup limit did it', () => {
    const kills = parseKernelOom([
      '[ 3833.581301] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,' +
        'mems_allowed=0,oom_memcg=/gpuq/x,task_memcg=/gpuq/x,task=python3,pid=8580,uid=0',
      '[ 3833.581324] Memory cgroup out of memory: Killed process 8580 (python3) ' +
        'total-vm:221460kB, anon-rss:204288kB, file-rss:6712kB, shmem-rss:0kB, ' +
        'UID:0 pgtables:468kB oom_score_adj:0',
    ]);
    expect(kills).toEqual([{ pid: 8580, name: 'python3', rssBytes: 211000 * 1024, cgroup: true }]);
  });
  it('ignores lines that are not kills', () => {
    expect(parseKernelOom(['[ 1.0] oom_reaper: reaped process 8580 (python3), now anon-rss:0kB'])).toEqual([]);
  });
});

describe('peaksAgainstLimits', () => {
  const limits = { ...LIMITS, memoryBytes: 2 * GiB, pids: 64, cpuTimeS: 120, timeoutS: 600 };
  it('sets each peak against its limit, in the words of the issue', () => {
    const peaks = peaksAgainstLimits({
      monitor: monitor({
        peakRssBytes: 2_125_824_819,
        peakProcs: 12,
        peakThreads: 40,
        peakGpuMemBytes: 10 * GiB,
        peakFolderBytes: 3 * MiB,
      }),
      status: exited(0, { cpuSeconds: 60 }),
      limits,
    });
    const text = Object.fromEntries(peaks.map((p) => [p.key, p.text]));
    expect(text.memory).toBe(
      'memory peaked at 1.98 GiB of the 2 GiB limit (99%), as sampled (the RSS of its processes)',
    );
    expect(text.tasks).toBe('processes and threads peaked at 40 of the 64 limit (63%) (sampled; --pids counts both)');
    expect(text.procs).toBe('processes alone peaked at 12');
    expect(text.gpu_mem).toBe('GPU memory peaked at 10 GiB');
    expect(text.folder).toBe('the job folder grew to 3 MiB');
    expect(text.cpu_time).toBe('used 1m of CPU time of the 2m limit (50%)');
    expect(text.wall_time).toBe('ran 1m of the 10m wall-clock limit (10%)');
    const memory = peaks.find((p) => p.key === 'memory');
    expect(memory).toMatchObject({ value: 2_125_824_819, limit: 2 * GiB, source: 'sampler' });
    expect(memory?.ratio).toBeCloseTo(0.99, 2);
    // the limit --pids sets is against processes and threads, never processes alone
    expect(peaks.find((p) => p.key === 'procs')?.limit).toBeNull();
  });
  it("takes the memory cgroup's high-water mark over the sampler's, and the pids cgroup's peak", () => {
    const peaks = peaksAgainstLimits({
      monitor: monitor({ peakRssBytes: 139 * MiB, peakThreads: 4, peakProcs: 4 }),
      status: exited(137, { memoryPeakBytes: 200 * MiB, pidsPeak: 8, pidsRefused: 3 }),
      limits: { ...limits, memoryBytes: 200 * MiB, pids: 8 },
    });
    const memory = peaks.filter((p) => p.key === 'memory');
    expect(memory).toHaveLength(1);
    expect(memory[0]).toMatchObject({ value: 200 * MiB, source: 'cgroup' });
    expect(memory[0]?.text).toBe(
      'memory peaked at 200 MiB of the 200 MiB limit (100%), as the memory cgroup measured it (page cache included)',
    );
    expect(peaks.find((p) => p.key === 'tasks')?.text).toBe(
      'processes and threads peaked at 8 of the 8 limit (100%) (as the pids cgroup counted them; --pids counts both)',
    );
  });
  it("names the kernel's RSS at the kill nowhere among the peaks: one memory figure, the sampler's", () => {
    const peaks = peaksAgainstLimits({
      monitor: monitor({ samples: 1, peakRssBytes: 139 * MiB, peakProcs: 0, peakThreads: 0 }),
      status: exited(137, {
        kernelOom: [
          'Memory cgroup out of memory: Killed process 1 (python3) total-vm:1kB, ' +
            'anon-rss:210944kB, file-rss:0kB, shmem-rss:0kB',
        ],
      }),
      limits: { ...limits, memoryBytes: 200 * MiB },
    });
    expect(peaks.filter((p) => p.key === 'memory').map((p) => p.value)).toEqual([139 * MiB]);
    expect(peaks.find((p) => p.key === 'tasks')).toBeUndefined();
  });
  it('says why a figure is over its limit', () => {
    const over = peaksOf(
      {
        memoryBytes: 210 * MiB,
        memorySource: 'sampler',
        tasks: 9,
        tasksSource: 'sampler',
        procs: 4,
        openFiles: null,
        folderBytes: null,
        gpuMemBytes: null,
        cpuSeconds: 2.26,
        timedOut: true,
        noPidsCgroup: true,
      },
      { ...limits, memoryBytes: 200 * MiB, pids: 8, cpuTimeS: 2, timeoutS: 5, graceS: 2 },
      { startMs: 1_700_000_000_000, endMs: 1_700_000_005_450, nowMs: null },
    );
    const text = Object.fromEntries(over.map((p) => [p.key, p.text]));
    expect(text.wall_time).toBe(
      'ran 5.5s of the 5s wall-clock limit (109%: SIGTERM came at the limit, then it had up to the 2s grace period to stop)',
    );
    expect(text.tasks).toBe(
      'processes and threads peaked at 9 of the 8 limit (113%: no pids cgroup held the job, and ulimit -u does not ' +
        'hold back root) (sampled; --pids counts both)',
    );
    expect(text.cpu_time).toMatch(/^used 2s of CPU time of the 2s limit \(113%: the limit holds each process/);
    expect(text.memory).toMatch(/^memory peaked at 210 MiB of the 200 MiB limit \(105%: the sum of RSS counts/);
    // every ratio over 100% carries its reason
    for (const p of over) if (p.ratio !== null && p.ratio > 1.005) expect(p.text).toMatch(/\(\d+%: /);
  });
  it('gives the running time of a job still running from the node clock', () => {
    const status = { ...exited(0), state: 'running' as const, endedAtMs: null, exitCode: null, cpuSeconds: null };
    const peaks = peaksAgainstLimits({ monitor: null, status, limits, nowMs: status.startedAtMs + 30_000 });
    expect(peaks.map((p) => p.text)).toEqual(['has run 30s of the 10m wall-clock limit (5%)']);
  });
  it('sets GPU memory against the GPUs the job was given', () => {
    const peaks = peaksAgainstLimits({
      monitor: monitor({ peakGpuMemBytes: 60 * GiB }),
      status: exited(137),
      limits: { ...limits, memoryBytes: 200 * MiB },
      gpuTotalBytes: 80 * GiB,
    });
    const text = Object.fromEntries(peaks.map((p) => [p.key, p.text]));
    expect(text.gpu_mem).toBe("GPU memory peaked at 60 GiB of the GPU's 80 GiB (75%)");
  });
  it('is empty with nothing measured', () => {
    expect(peaksAgainstLimits({ monitor: null, status: null, limits })).toEqual([]);
  });
  it('ignores figures a job could have forged into nonsense', () => {
    const u = usageOf(monitor({ peakRssBytes: -5, peakThreads: -1, peakProcs: 0 }), exited(0, { cpuSeconds: -3 }));
    expect(u).toMatchObject({ memoryBytes: null, tasks: null, procs: null, cpuSeconds: null });
  });
});

describe("a job's times and figures", () => {
  const base: Job = {
    id: 'abc12345',
    name: 'x',
    file: '/x.py',
    node: 'local',
    gpus: [],
    competition: null,
    state: 'running',
    isolation: 'ulimit',
    image: null,
    limits: { ...LIMITS, timeoutS: 600 },
    env: {},
    args: [],
    createdAt: '2026-01-01T00:00:00.000Z',
    startedAt: null,
    endedAt: null,
    history: [{ state: 'running', at: '2026-01-01T00:00:12.000Z', note: null }],
    remote: null,
    verdict: null,
  };
  const S = Date.parse('2026-01-01T00:00:01.000Z');
  it("takes the supervisor's start and end, to the millisecond, not when gpuq noticed", () => {
    const j = withSupervisorTimes(base, { startedAtMs: S, endedAtMs: S + 303 });
    expect(j.startedAt).toBe('2026-01-01T00:00:01.000Z');
    expect(j.endedAt).toBe('2026-01-01T00:00:01.303Z');
    expect(jobDurationMs({ ...j, state: 'done' }, S + 99_999)).toBe(303);
    expect(j.history).toEqual(base.history);
  });
  it('never lets startedAt come after endedAt, and ignores times that are not times', () => {
    const j = withSupervisorTimes(base, { startedAtMs: S, endedAtMs: S - 5000 });
    expect(j.endedAt).toBe(j.startedAt);
    expect(withSupervisorTimes(base, { startedAtMs: 'soon', endedAtMs: 1e300 })).toEqual(base);
    expect(withSupervisorTimes(base, { startedAtMs: 12, endedAtMs: null })).toEqual(base);
    // an end recorded later keeps the start recorded at launch
    const started = withSupervisorTimes(base, { startedAtMs: S });
    expect(withSupervisorTimes(started, { endedAtMs: S + 2000 }).endedAt).toBe('2026-01-01T00:00:03.000Z');
  });
  it("runs from the supervisor's start to now while running; unknown when done without an end", () => {
    const running = withSupervisorTimes(base, { startedAtMs: S });
    expect(jobDurationMs(running, S + 1500)).toBe(1500);
    expect(jobDurationMs({ ...running, state: 'done' }, S + 1500)).toBeNull();
    expect(jobDurationMs(base, S)).toBeNull();
  });
  it('prints the recorded peaks and the same duration as its wall-time peak', () => {
    const usage = usageOf(
      monitor({ peakRssBytes: 139 * MiB, peakThreads: 9, peakProcs: 4, peakFolderBytes: 50 * MiB }),
      exited(0, { memoryPeakBytes: 206 * MiB, startedAtMs: S, endedAtMs: S + 303 }),
    );
    const done = {
      ...withSupervisorTimes(base, { startedAtMs: S, endedAtMs: S + 303 }),
      state: 'done' as const,
      usage,
    };
    const f = jobFigures(done, S + 60_000);
    expect(f.durationMs).toBe(303);
    const wall = f.peaks?.find((p) => p.key === 'wall_time');
    expect(wall?.value).toBe(0.303);
    expect(wall?.text).toBe('ran 303ms of the 10m wall-clock limit (0%)');
    expect(f.peaks?.find((p) => p.key === 'memory')?.value).toBe(206 * MiB);
    expect(f.peaks?.find((p) => p.key === 'folder')?.value).toBe(50 * MiB);
    expect(jobFigures(base, S).peaks).toBeNull();
  });
});
