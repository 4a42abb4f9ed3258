/**
 * Formatting for people (sizes, durations, option values) and peaks against limits.
 */
import { describe, expect, it } from 'vitest';
import { clip, formatBytes, formatDuration, formatPercent, formatSizeOption, plural } from '../../src/core/format.js';
import { parseKernelOom, peaksAgainstLimits } from '../../src/core/peaks.js';
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
        peakGpuMemBytes: 10 * GiB,
        peakFolderBytes: 3 * MiB,
      }),
      status: exited(0, { cpuSeconds: 60 }),
      limits,
    });
    const text = Object.fromEntries(peaks.map((p) => [p.key, p.text]));
    expect(text.rss).toBe('RSS peaked at 1.98 GiB of the 2 GiB limit (99%)');
    expect(text.procs).toBe('processes peaked at 12 of the 64 limit (19%)');
    expect(text.gpu_mem).toBe('GPU memory peaked at 10 GiB');
    expect(text.folder).toBe('the job folder grew to 3 MiB');
    expect(text.cpu_time).toBe('used 1m of CPU time of the 2m limit (50%)');
    expect(text.wall_time).toBe('ran 1m of the 10m wall-clock limit (10%)');
    const rss = peaks.find((p) => p.key === 'rss');
    expect(rss).toMatchObject({ value: 2_125_824_819, limit: 2 * GiB });
    expect(rss?.ratio).toBeCloseTo(0.99, 2);
  });
  it('uses the RSS the kernel reported at the kill when the sampler saw less', () => {
    const peaks = peaksAgainstLimits({
      monitor: monitor({ samples: 1, peakRssBytes: 0, peakProcs: 0 }),
      status: exited(137, {
        kernelOom: [
          'Memory cgroup out of memory: Killed process 1 (python3) total-vm:1kB, ' +
            'anon-rss:204800kB, file-rss:0kB, shmem-rss:0kB',
        ],
      }),
      limits: { ...limits, memoryBytes: 200 * MiB },
    });
    expect(peaks.find((p) => p.key === 'rss')?.text).toBe(
      'RSS peaked at 200 MiB of the 200 MiB limit (100%) (when it was killed)',
    );
    expect(peaks.find((p) => p.key === 'procs')).toBeUndefined();
  });
  it('gives the running time of a job still running from the node clock', () => {
    const status = { ...exited(0), state: 'running' as const, endedAtMs: null, exitCode: null, cpuSeconds: null };
    const peaks = peaksAgainstLimits({ monitor: null, status, limits, nowMs: status.startedAtMs + 30_000 });
    expect(peaks.map((p) => p.text)).toEqual(['has run 30s of the 10m wall-clock limit (5%)']);
  });
  it("adds the memory cgroup's own peak, and GPU memory against the GPUs' size", () => {
    const peaks = peaksAgainstLimits({
      monitor: monitor({ peakGpuMemBytes: 60 * GiB }),
      status: { ...exited(137), memoryPeakBytes: 200 * MiB } as ReturnType<typeof exited>,
      limits: { ...limits, memoryBytes: 200 * MiB },
      gpuTotalBytes: 80 * GiB,
    });
    const text = Object.fromEntries(peaks.map((p) => [p.key, p.text]));
    expect(text.cgroup_mem).toBe(
      'the memory cgroup (page cache included) peaked at 200 MiB of the 200 MiB limit (100%)',
    );
    expect(text.gpu_mem).toBe("GPU memory peaked at 60 GiB of the GPU's 80 GiB (75%)");
  });
  it('is empty with nothing measured', () => {
    expect(peaksAgainstLimits({ monitor: null, status: null, limits })).toEqual([]);
  });
});
