import { describe, expect, it } from 'vitest';
import { sectionMarker } from '../../src/node/commands.js';
import { parseProbe } from '../../src/node/probe.js';
import { builtinLimits } from '../../src/core/limits.js';

const N = 'abc123';
const good = {
  version: 1,
  state: 'exited',
  supervisorPid: 10,
  pid: 11,
  pgid: 11,
  bootId: 'b',
  startedAtMs: 1,
  endedAtMs: 2,
  exitCode: 0,
  signal: null,
  timedOut: false,
  cancelled: false,
  limitFired: null,
  killedAfterGrace: false,
  cpuSeconds: 0.1,
  cgroup: null,
  oomKills: null,
  pidsRefused: null,
  kernelOom: [],
  leftovers: 0,
};

function probeText(status: unknown, extra: Record<string, string> = {}): string {
  const sec = (name: string, body: string) => `${sectionMarker(N, name)}\n${body}`;
  return [
    sec('status', typeof status === 'string' ? status : JSON.stringify(status)),
    sec('monitor', extra.monitor ?? ''),
    sec('alive', 'no'),
    sec('boot', 'b'),
    sec('samples', extra.samples ?? ''),
    sec('stderr', 'oops\n'),
    sec('end', ''),
  ].join('\n');
}

describe('parseProbe', () => {
  it('reads a well-formed status, monitor and samples', () => {
    const monitor = {
      version: 1,
      samples: 3,
      peakRssBytes: 5,
      peakProcs: 1,
      peakThreads: 1,
      peakOpenFiles: 3,
      peakFolderBytes: 9,
      peakGpuMemBytes: null,
      memoryWatchFired: false,
      memoryWatchRssBytes: null,
    };
    const sample = { t: 1, rssBytes: 2, cpuPct: 3, procs: 1, threads: 1, openFiles: 3, folderBytes: 4, gpu: null };
    const p = parseProbe(
      probeText(good, { monitor: JSON.stringify(monitor), samples: `${JSON.stringify(sample)}\n{torn` }),
      N,
    );
    expect(p.status).toEqual(good);
    expect(p.monitor).toEqual(monitor);
    expect(p.recentSamples).toEqual([sample]);
    expect(p.stderrTail).toBe('oops');
    expect(p).toMatchObject({ missing: false, supervisorAlive: false, bootId: 'b' });
  });

  // The job can write its own folder: a status.json of the wrong shape counts as absent.
  it.each([
    ['kernelOom with a number', { ...good, kernelOom: [1] }],
    ['exitCode as text', { ...good, exitCode: '0' }],
    ['no supervisorPid', { ...good, supervisorPid: undefined }],
    ['timedOut as a string', { ...good, timedOut: 'false' }],
    ['an array', [good]],
    ['not JSON', '{"state":'],
  ])('treats a status.json with %s as missing', (_what, status) => {
    expect(parseProbe(probeText(status), N).status).toBeNull();
  });

  it('drops samples and monitor files of the wrong shape', () => {
    const p = parseProbe(probeText(good, { monitor: '{"samples":"many"}', samples: '{"t":"now"}\n[1,2]' }), N);
    expect(p.monitor).toBeNull();
    expect(p.recentSamples).toEqual([]);
  });
});

describe('text a job wrote', () => {
  it('reaches the verdict without escape sequences or control characters', async () => {
    const { classify } = await import('../../src/core/classify.js');
    const { printable } = await import('../../src/core/format.js');
    expect(printable('a\x1b]0;PWNED\x07b\x1b[31mc\x1b]52;c;ZXZpbA==\x1b\\d\x07\x08e\tf')).toBe('abcde\tf');
    const p = parseProbe(probeText({ ...good, exitCode: 1 }), N);
    p.stderrTail = 'Traceback (most recent call last):\nValueError: bad \x1b]0;PWNED\x07title\x1b[2J';
    const v = classify({
      probe: p,
      limits: {
        ...builtinLimits(),
        timeoutS: 60,
        graceS: 1,
        memoryBytes: null,
        pids: null,
        files: null,
        fileSizeBytes: null,
      },
      cancelRequested: false,
      launchBootId: 'b',
      node: 'local',
    });
    for (const text of [v.summary, ...v.evidence, ...v.hints]) expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    expect(v.summary).toContain('ValueError: bad title');
  });
});
