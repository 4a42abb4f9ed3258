/**
 * The parts of `gpuq watch` that need no terminal: the plain and NDJSON printers, the line
 * splitter and sample parser of the watch service, and the reducer's handling of samples.
 */
import { describe, expect, it } from 'vitest';
import type { WatchEvent } from '../../src/tui/events.js';
import { plainPrinter } from '../../src/tui/plain.js';
import { headerRows, resourceRows } from '../../src/tui/lines.js';
import { initialWatchState, reduceWatch } from '../../src/tui/model.js';
import { lineSplitter, parseSample } from '../../src/services/watch.js';
import { jobFigures, usageOf } from '../../src/core/peaks.js';
import { MiB, NOW, T0, doneJob, runningJob, sample } from '../helpers/tui-fixtures.js';

/** Runs events through a printer at the pinned clock; returns stdout and stderr lines. */
function print(events: WatchEvent[], json = false): { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const p = plainPrinter({ out: (l) => out.push(l), warn: (l) => err.push(l) }, { json, now: () => NOW });
  for (const e of events) p(e);
  return { out, err };
}

describe('plain printer', () => {
  it('prints the job, timestamped log lines, a resource line every 10 s and the verdict', () => {
    const events: WatchEvent[] = [
      { type: 'job', job: runningJob() },
      { type: 'connection', status: 'connected' },
      ...Array.from({ length: 15 }, (_, i): WatchEvent => ({ type: 'sample', sample: sample(i) })),
      { type: 'log', stream: 'stdout', line: 'epoch 1', at: T0 + 500 },
      { type: 'log', stream: 'stderr', line: 'warning: slow', at: T0 + 600 },
      { type: 'verdict', job: doneJob() },
    ];
    const { out, err } = print(events);
    expect(err).toEqual([]);
    expect(out).toEqual([
      '2026-01-02T03:05:35Z job abc12345 (train.py) on gpu1, GPU 0: running · timeout 10m00s · memory 200 MiB',
      '2026-01-02T03:05:35Z resources: RSS 20.0 MiB / 200 MiB (10%) ' +
        '· CPU 95% · tasks 5 / 64 (3 processes) · GPU0 mem 1.00 GiB (job 900 MiB) util 40% · folder 12.0 KiB',
      '2026-01-02T03:05:35Z resources: RSS 120 MiB / 200 MiB (60%) ' +
        '· CPU 95% · tasks 5 / 64 (3 processes) · GPU0 mem 1.00 GiB (job 900 MiB) util 40% · folder 12.0 KiB',
      '2026-01-02T03:04:05Z [stdout] epoch 1',
      '2026-01-02T03:04:05Z [stderr] warning: slow',
      '2026-01-02T03:05:35Z resources: RSS 160 MiB / 200 MiB (80%) ' +
        '· CPU 95% · tasks 5 / 64 (3 processes) · GPU0 mem 1.00 GiB (job 900 MiB) util 40% · folder 12.0 KiB',
      '2026-01-02T03:05:35Z done: oom (cgroup), exit 137 · SIGKILL, ran 1m35s: Killed for memory at the memory limit of 200 MiB.',
      '2026-01-02T03:05:35Z hint: raise the limit: gpuq submit --memory 400m',
    ]);
  });

  it('keeps the last figures of the live job, not the zeros sampled after its death', () => {
    const { out } = print([
      { type: 'job', job: runningJob() },
      { type: 'sample', sample: sample(0) },
      { type: 'sample', sample: sample(3) },
      { type: 'sample', sample: sample(4, { rssBytes: 0, procs: 0, cpuPct: 0 }) },
      { type: 'verdict', job: doneJob() },
    ]);
    expect(out.filter((l) => l.includes('resources:')).pop()).toContain('RSS 50.0 MiB / 200 MiB');
    expect(out.filter((l) => l.includes('state: ending'))).toHaveLength(1);
  });

  it('states changes and reconnects (on stderr)', () => {
    const { out, err } = print([
      { type: 'job', job: runningJob({ state: 'queued', startedAt: null, remote: null }) },
      { type: 'job', job: runningJob() },
      { type: 'connection', status: 'connected' },
      { type: 'connection', status: 'reconnecting', retryInS: 2, reason: 'connection reset' },
      { type: 'connection', status: 'connected' },
    ]);
    expect(out[0]).toContain(': queued');
    expect(out[1]).toBe('2026-01-02T03:05:35Z state: running');
    expect(err).toEqual(['gpuq: node gpu1: connection reset; reconnecting in 2 s', 'gpuq: node gpu1: reconnected']);
  });

  it('prints NDJSON events with ISO times and the verdict exit code', () => {
    const { out } = print(
      [
        { type: 'job', job: runningJob() },
        { type: 'log', stream: 'stderr', line: 'boom', at: T0 },
        { type: 'sample', sample: sample(1) },
        { type: 'verdict', job: doneJob() },
      ],
      true,
    );
    const recs = out.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(recs.map((r) => r.type)).toEqual(['job', 'log', 'sample', 'verdict']);
    expect(recs[1]).toEqual({ type: 'log', at: '2026-01-02T03:04:05.000Z', stream: 'stderr', line: 'boom' });
    expect(recs[2]).toMatchObject({ type: 'sample', sample: { rssBytes: 30 * 1024 * 1024 } });
    expect(recs[3]).toMatchObject({
      type: 'verdict',
      exitCode: 12,
      verdict: { class: 'oom' },
      job: { id: 'abc12345', state: 'done' },
      durationMs: 95_000,
      peaks: null,
    });
  });

  it('prints the peaks recorded with the verdict, the same ones list, show and diagnose print', () => {
    const usage = usageOf(
      {
        version: 1,
        samples: 9,
        peakRssBytes: 139 * MiB,
        peakProcs: 4,
        peakThreads: 9,
        peakOpenFiles: 7,
        peakFolderBytes: 50 * MiB,
        peakGpuMemBytes: null,
        memoryWatchFired: false,
        memoryWatchRssBytes: null,
      },
      null,
    );
    const job = { ...doneJob(), usage };
    const expected = jobFigures(job, NOW);
    expect(expected.peaks?.find((p) => p.key === 'memory')?.value).toBe(139 * MiB);
    const { out } = print([{ type: 'verdict', job }]);
    expect(out.filter((l) => l.includes(' peak: ')).map((l) => l.replace(/^\S+ peak: /, ''))).toEqual(
      expected.peaks?.map((p) => p.text),
    );
    const rec = JSON.parse(print([{ type: 'verdict', job }], true).out[0] as string);
    expect(rec.durationMs).toBe(expected.durationMs);
    expect(rec.peaks).toEqual(expected.peaks);
  });
});

describe('watch service helpers', () => {
  it('splits chunks into lines across chunk and UTF-8 boundaries, dropping a partial first line', () => {
    const lines: string[] = [];
    const s = lineSplitter((l) => lines.push(l), true);
    const bytes = Buffer.from('tail of an old line\nfirst é\nsec');
    s.push(bytes.subarray(0, 26));
    s.push(bytes.subarray(26));
    s.push(Buffer.from('ond\nno newline'));
    s.flush();
    expect(lines).toEqual(['first é', 'second', 'no newline']);
  });

  it('parses samples and refuses other lines', () => {
    expect(parseSample(JSON.stringify(sample(2)))).toEqual(sample(2));
    expect(parseSample('{"t":1}')).toBeNull();
    expect(parseSample('not json')).toBeNull();
    expect(parseSample('null')).toBeNull();
  });
});

describe('watch model samples', () => {
  it('keeps the last live sample once the processes are gone, and time moving forward', () => {
    let s = initialWatchState({ job: runningJob() });
    for (const x of [sample(1), sample(2), sample(2), sample(3, { procs: 0, rssBytes: 0 })])
      s = reduceWatch(s, { type: 'sample', sample: x });
    expect(s.samples.map((x) => x.t)).toEqual([T0 + 1000, T0 + 2000]);
    expect(s.peaks?.rssBytes).toBe(40 * 1024 * 1024);
  });
});

describe('the live view once the job is done', () => {
  it('shows the peaks recorded with the verdict and the duration every page prints, not what it sampled', () => {
    const usage = {
      memoryBytes: 206 * MiB,
      memorySource: 'cgroup' as const,
      tasks: 9,
      tasksSource: 'cgroup' as const,
      procs: 4,
      openFiles: null,
      folderBytes: 50 * MiB,
      gpuMemBytes: null,
      cpuSeconds: null,
      timedOut: false,
      noPidsCgroup: false,
    };
    let state = initialWatchState();
    state = reduceWatch(state, { type: 'job', job: runningJob() });
    state = reduceWatch(state, { type: 'sample', sample: sample(1, { rssBytes: 139 * MiB }) });
    const running = resourceRows(state, NOW, 120).map((r) => r.map((s) => s.text).join(''));
    expect(running[0]).toMatch(/peak 139 MiB/);
    state = reduceWatch(state, { type: 'verdict', job: { ...doneJob(), usage } });
    const rows = resourceRows(state, NOW, 120).map((r) => r.map((s) => s.text).join(''));
    expect(rows[0]).toMatch(/peak 206 MiB/);
    expect(rows[2]).toMatch(/^tasks\s+5 \/ 64 · 3 procs .*peak 9/);
    expect(rows.at(-1)).toMatch(/\(peak 50\.0 MiB\)/);
    const header = headerRows(state.job, NOW, 120)[1]
      ?.map((s) => s.text)
      .join('');
    expect(header).toMatch(/^ran 1m35s \/ 10m00s /);
  });
});
