/**
 * Every printed form in one table: each unit in each style on its boundaries (core/format), the
 * tone of every job state and verdict class, the exit text, the limits line and the sample line
 * (core/present), and the colour each front end gives a tone.
 */
import { describe, expect, it } from 'vitest';
import { makeStyle, paint } from '../../src/cli/style.js';
import { paintState } from '../../src/cli/render.js';
import {
  formatBytes,
  formatDuration,
  formatPercent,
  formatSizeOption,
  formatTimestamp,
  parseIso,
} from '../../src/core/format.js';
import { durationText, exitText, levelTone, limitsLine, sampleLine, type Tone, tone } from '../../src/core/present.js';
import { JOB_STATES, type Limits, type Sample, VERDICT_CLASSES } from '../../src/core/types.js';
import { parseDuration, parseSize } from '../../src/core/units.js';
import { inkColor } from '../../src/tui/Line.js';
import { builtinLimits } from '../../src/core/limits.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('sizes', () => {
  it.each([
    // bytes, text (sentences), column (tables and the live view)
    [0, '0 B', '0 B'],
    [1, '1 B', '1 B'],
    [512, '512 B', '512 B'],
    [1023, '1023 B', '1023 B'],
    [KiB, '1 KiB', '1.00 KiB'],
    [12 * KiB, '12 KiB', '12.0 KiB'],
    [1.5 * MiB, '1.5 MiB', '1.50 MiB'],
    [9.999 * MiB, '10 MiB', '10.0 MiB'],
    [20 * MiB, '20 MiB', '20.0 MiB'],
    [99.96 * MiB, '99.96 MiB', '100 MiB'],
    [1000 * MiB, '1000 MiB', '1000 MiB'],
    [1023.999 * MiB, '1 GiB', '1024 MiB'],
    [2_125_824_819, '1.98 GiB', '1.98 GiB'],
    [2 * GiB, '2 GiB', '2.00 GiB'],
    [80 * GiB, '80 GiB', '80.0 GiB'],
    [1024 * GiB, '1 TiB', '1.00 TiB'],
  ])('%d B → %s / %s', (n, text, column) => {
    expect(formatBytes(n)).toBe(text);
    expect(formatBytes(n, 'text')).toBe(text);
    expect(formatBytes(n, 'column')).toBe(column);
  });
  it('says what it cannot print', () => {
    expect(formatBytes(-1)).toBe('? B');
    expect(formatBytes(Number.NaN)).toBe('? B');
    expect(formatBytes(Number.NaN, 'column')).toBe('?');
    expect(formatBytes(-2 * KiB, 'column')).toBe('-2.00 KiB');
  });
  it.each([
    [1, '1b'],
    [1023, '1023b'],
    [KiB, '1k'],
    [400 * MiB, '400m'],
    [1.5 * GiB, '1.5g'],
    [4 * GiB, '4g'],
    [2 * 1024 * GiB, '2t'],
  ])('option form %d B → %s parses back', (b, text) => {
    expect(formatSizeOption(b)).toBe(text);
    expect(parseSize(text, '--memory')).toBe(b);
  });
});

describe('durations', () => {
  it.each([
    // seconds, text (sentences and options), column (tables and the live view)
    [0, '0s', '0s'],
    [0.36, '360ms', '0s'],
    [1, '1s', '1s'],
    [59, '59s', '59s'],
    [60, '1m', '1m00s'],
    [65, '1m5s', '1m05s'],
    [90, '1m30s', '1m30s'],
    [600, '10m', '10m00s'],
    [3599, '59m59s', '59m59s'],
    [3600, '1h', '1h00m00s'],
    [3900, '1h5m', '1h05m00s'],
    [5400, '1h30m', '1h30m00s'],
    [7387, '2h3m7s', '2h03m07s'],
    [86399, '23h59m59s', '23h59m59s'],
    [86400, '1d', '1d00h'],
    [90000, '1d1h', '1d01h'],
    [273600, '3d4h', '3d04h'],
  ])('%d s → %s / %s', (s, text, column) => {
    expect(formatDuration(s)).toBe(text);
    expect(formatDuration(s, 'text')).toBe(text);
    expect(formatDuration(s, 'column')).toBe(column);
    if (s >= 1) expect(parseDuration(text, '--timeout')).toBe(s);
  });
  it('rounds in sentences and floors in columns (elapsed time never runs ahead)', () => {
    expect(formatDuration(59.6)).toBe('1m');
    expect(formatDuration(59.6, 'column')).toBe('59s');
  });
  it('says what it cannot print', () => {
    expect(formatDuration(-1)).toBe('?');
    expect(formatDuration(Number.NaN)).toBe('?');
    expect(formatDuration(-1, 'column')).toBe('0s');
    expect(formatDuration(Number.POSITIVE_INFINITY, 'column')).toBe('0s');
  });
});

describe('percentages take a ratio', () => {
  it.each([
    [0, '0%'],
    [0.004, '0%'],
    [0.005, '1%'],
    [0.145, '15%'],
    [0.25, '25%'],
    [0.55, '55%'],
    [0.994, '99%'],
    [0.996, '100%'],
    [1, '100%'],
    [1.5, '150%'],
    [Number.NaN, '?%'],
    [Number.POSITIVE_INFINITY, '?%'],
  ])('%d → %s', (r, text) => expect(formatPercent(r)).toBe(text));
});

describe('timestamps', () => {
  it('prints ISO 8601 UTC to the second and reads ISO back', () => {
    const ms = Date.parse('2026-01-02T03:04:05.678Z');
    expect(formatTimestamp(ms)).toBe('2026-01-02T03:04:05Z');
    expect(formatTimestamp(Number.NaN)).toBe('????-??-??T??:??:??Z');
    expect(parseIso('2026-01-02T03:04:05.678Z')).toBe(ms);
    expect(parseIso(null)).toBeNull();
    expect(parseIso('')).toBeNull();
    expect(parseIso('yesterday')).toBeNull();
  });
});

describe('tones', () => {
  const want: Record<string, Tone> = {
    pending: 'waiting',
    queued: 'waiting',
    running: 'active',
    grading: 'active',
    done: 'muted',
    succeeded: 'ok',
    failed: 'bad',
    timeout: 'bad',
    oom: 'bad',
    gpu_oom: 'bad',
    limit: 'bad',
    signaled: 'bad',
    cancelled: 'muted',
    lost: 'warn',
    grading_failed: 'warn',
    rejected: 'bad',
  };
  it.each([...JOB_STATES, ...VERDICT_CLASSES])('%s has one tone', (label) => {
    expect(tone(label)).toBe(want[label] ?? 'bad');
    expect(want[label], `no pinned tone for ${label}`).toBeDefined();
  });
  it('an unknown label is bad, so it is not overlooked', () => expect(tone('exploded')).toBe('bad'));
  it.each([
    [0, 'ok'],
    [0.69, 'ok'],
    [0.7, 'warn'],
    [0.89, 'warn'],
    [0.9, 'bad'],
    [1.2, 'bad'],
  ])('fill level %d is %s', (f, t) => expect(levelTone(f)).toBe(t));

  const tones: Tone[] = ['ok', 'active', 'waiting', 'warn', 'bad', 'muted', 'info', 'accent'];
  const colors = { ok: 'green', active: 'cyan', waiting: 'yellow', warn: 'yellow', bad: 'red', muted: 'gray' };
  it('the CLI and the live view give each tone the same colour', () => {
    const style = makeStyle({ isTTY: false, env: { FORCE_COLOR: '1' }, json: false });
    for (const t of tones) {
      const ink = inkColor(t);
      expect(ink).toMatch(/^(green|cyan|yellow|red|gray|magenta)$/);
      expect(paint(style, t, 'x')).toBe(style.c[ink as 'green']('x'));
      if (t in colors) expect(ink).toBe(colors[t as keyof typeof colors]);
    }
    expect(paintState(style, 'running')).toBe(style.c.cyan('running'));
    expect(paintState(style, 'lost')).toBe(style.c.yellow('lost'));
    expect(paint(style, 'ok', 'x')).not.toBe('x');
  });
  it('paints nothing without colour', () => {
    const style = makeStyle({ isTTY: false, env: {}, json: false });
    expect(paint(style, 'bad', 'failed')).toBe('failed');
  });
});

describe('exit text', () => {
  it.each([
    [{ exitCode: 0, signal: null, timedOut: false }, 'exit 0'],
    [{ exitCode: 1, signal: null, timedOut: false }, 'exit 1'],
    [{ exitCode: 137, signal: 'SIGKILL', timedOut: false }, 'exit 137 · SIGKILL'],
    [{ exitCode: 137, signal: 'SIGKILL', timedOut: true }, 'exit 137 · SIGKILL · timed out'],
    [{ exitCode: null, signal: 'SIGSEGV', timedOut: false }, 'SIGSEGV'],
    [{ exitCode: null, signal: null, timedOut: false }, 'no exit status'],
    [{ exitCode: null, signal: null, timedOut: true }, 'no exit status · timed out'],
  ])('%o → %s', (v, text) => expect(exitText(v)).toBe(text));
});

describe('limits line', () => {
  const limits: Limits = {
    ...builtinLimits(),
    timeoutS: 600,
    memoryBytes: 200 * MiB,
    pids: 64,
    fileSizeBytes: null,
    gpus: 1,
  };
  it('names every limit, unlimited where there is none', () => {
    expect(limitsLine(limits)).toBe(
      'timeout 10m00s (grace 10s), memory 200 MiB, pids 64, files 4096, ' +
        'file size unlimited, cpu time unlimited, gpus 1',
    );
  });
  it('prints set limits in the same units', () => {
    expect(
      limitsLine({
        ...builtinLimits(),
        graceS: 30,
        memoryBytes: null,
        pids: null,
        files: null,
        fileSizeBytes: 1.5 * GiB,
        cpuTimeS: 90,
      }),
    ).toBe(
      'timeout 1h00m00s (grace 30s), memory unlimited, pids unlimited, ' +
        'files unlimited, file size 1.5 GiB, cpu time 1m30s, gpus 0',
    );
  });
});

describe('sample line', () => {
  const s: Sample = {
    t: 0,
    rssBytes: 120 * MiB,
    cpuPct: 99.6,
    procs: 3,
    threads: 5,
    openFiles: 7,
    folderBytes: 12 * KiB,
    gpu: [{ index: 0, memUsedBytes: 1024 * MiB, utilPct: 40, jobMemBytes: 900 * MiB }],
  };
  it('sets RSS and tasks (processes and threads, what --pids counts) against their limits', () => {
    expect(sampleLine(s, { memoryBytes: 200 * MiB, pids: 64 })).toBe(
      'RSS 120 MiB / 200 MiB (60%) · CPU 100% · tasks 5 / 64 (3 processes) · GPU0 mem 1.00 GiB (job ' +
        '900 MiB) util 40% · folder 12.0 KiB',
    );
  });
  it('without limits, and for a GPU that reports neither its utilisation nor per-process memory', () => {
    expect(
      sampleLine(
        { ...s, rssBytes: 3 * GiB, gpu: [{ index: 1, memUsedBytes: 70 * GiB, utilPct: null, jobMemBytes: null }] },
        null,
      ),
    ).toBe('RSS 3.00 GiB · CPU 100% · tasks 5 (3 processes) · GPU1 mem 70.0 GiB · folder 12.0 KiB');
    expect(sampleLine({ ...s, gpu: null, procs: 1, threads: 1, cpuPct: 0 }, { memoryBytes: null, pids: null })).toBe(
      'RSS 120 MiB · CPU 0% · tasks 1 (1 process) · folder 12.0 KiB',
    );
  });
});

describe('a job duration', () => {
  it.each([
    [null, '-'],
    [-1, '-'],
    [0, '0ms'],
    [303, '303ms'],
    [999, '999ms'],
    [1000, '1s'],
    [5450, '5.5s'],
    [59_940, '59.9s'],
    [59_960, '1m'],
    [90_000, '1m30s'],
    [3_723_000, '1h2m3s'],
  ])('%s ms → %s', (ms, text) => expect(durationText(ms)).toBe(text));
});
