/**
 * The status line of `wait` and `submit --wait` (src/core/wait-status.ts): every form it takes,
 * hostile names from a node's queue.json made printable, and the cut to the terminal's width.
 */
import { describe, expect, it } from 'vitest';
import type { QueueFile, Sample } from '../../src/core/types.js';
import { fitLine, type WaitSnapshot, waitStatusLine, waitStatusText } from '../../src/core/wait-status.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const gpu = (index: number, over: Partial<QueueFile['gpus'][number]> = {}): QueueFile['gpus'][number] => ({
  index,
  state: 'free',
  job: null,
  submitter: null,
  pid: null,
  user: null,
  sinceMs: null,
  timeoutS: null,
  memMiB: null,
  ...over,
});
const queue = (over: Partial<QueueFile>): QueueFile => ({
  version: 1,
  position: 1,
  need: 1,
  priority: 0,
  ahead: [],
  aheadCount: 0,
  length: 1,
  gpus: [gpu(0)],
  updatedAtMs: NOW,
  ...over,
});
const sample = (rssBytes: number, gpuMem: number[] = []): Sample => ({
  t: NOW,
  rssBytes,
  cpuPct: 100,
  procs: 1,
  threads: 1,
  openFiles: 3,
  folderBytes: 0,
  gpu: gpuMem.length ? gpuMem.map((m, i) => ({ index: i, memUsedBytes: m, utilPct: 50, jobMemBytes: m })) : null,
});
function snap(state: WaitSnapshot['job']['state'], over: Partial<WaitSnapshot> = {}): WaitSnapshot {
  return {
    job: {
      id: 'ab12cd34',
      state,
      node: 'gpu1',
      startedAt: state === 'running' || state === 'grading' ? new Date(NOW - 65_000).toISOString() : null,
      endedAt: null,
      queue: null,
    },
    sample: null,
    queue: null,
    ...over,
  };
}

describe('waitStatusText', () => {
  it('says how long a running job has run, in the form every command prints, and its memory', () => {
    expect(waitStatusText(snap('running'), NOW)).toBe('running 1m5s');
    expect(waitStatusText(snap('running', { sample: sample(1.2 * 1024 ** 3) }), NOW)).toBe('running 1m5s · 1.20 GiB');
    expect(waitStatusText(snap('running', { sample: sample(300 * 1024 ** 2, [900 * 1024 ** 2]) }), NOW)).toBe(
      'running 1m5s · 300 MiB · GPU 900 MiB',
    );
    const short = snap('running');
    short.job.startedAt = new Date(NOW - 5400).toISOString();
    expect(waitStatusText(short, NOW)).toBe('running 5.4s');
    expect(waitStatusText(snap('grading', { sample: sample(1024) }), NOW)).toBe('grading 1m5s');
    expect(waitStatusText(snap('pending'), NOW)).toBe('starting on gpu1');
  });

  it("says where a queued job stands in its node's queue, and why", () => {
    expect(waitStatusText(snap('queued'), NOW)).toBe('queued on gpu1');
    const held = queue({ position: 1, gpus: [gpu(0, { state: 'held', job: 'ef56gh78', pid: 10 })] });
    expect(waitStatusText(snap('queued', { queue: held }), NOW)).toBe(
      'queued, position 1 on gpu1 (waiting for GPU 0, held by job ef56gh78)',
    );
    const behind = queue({ position: 3, aheadCount: 2, ahead: [] });
    expect(waitStatusText(snap('queued', { queue: behind }), NOW)).toBe('queued, position 3 on gpu1 (behind 2 jobs)');
    const foreign = queue({
      need: 2,
      gpus: [gpu(0, { state: 'foreign', pid: 4242, user: 'bob', memMiB: 2048 }), gpu(1, { state: 'orphan', job: 'x' })],
    });
    expect(waitStatusText(snap('queued', { queue: foreign }), NOW)).toBe(
      'queued, position 1 on gpu1 (waiting for GPU 0, used outside gpuq by pid 4242 (bob); GPU 1, held by a leftover process of job x)',
    );
    // Before the first probe: the ledger's own view of the queue.
    const s = snap('queued');
    s.job.queue = { position: 2, reason: 'behind 1 job on gpu1', estimatedStart: null };
    expect(waitStatusText(s, NOW)).toBe('queued, position 2 on gpu1');
  });

  it("prints a node's hostile names without escapes or line breaks", () => {
    const evil = queue({
      gpus: [gpu(0, { state: 'held', job: 'j\u001b[2J\nX' }), gpu(1, { state: 'foreign', user: '\u001b]0;t\u0007u' })],
    });
    const text = waitStatusText(snap('queued', { queue: evil }), NOW);
    expect(text).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(text).toContain('held by job j X');
  });
});

describe('waitStatusLine and fitLine', () => {
  it('shows one job alone, several with how many are done', () => {
    expect(waitStatusLine([snap('running')], NOW)).toBe('running 1m5s');
    const done = snap('done');
    done.job.id = 'zz99yy88';
    expect(waitStatusLine([snap('running'), done, snap('queued')], NOW)).toBe(
      '1 of 3 done · ab12cd34 running 1m5s | ab12cd34 queued on gpu1',
    );
  });

  it('counts many jobs by state instead of naming each (a bulk submit)', () => {
    const many = [...Array(5)].map(() => snap('running'));
    many.push(snap('queued'), snap('done'), snap('pending'));
    expect(waitStatusLine(many, NOW)).toBe('1 of 8 done · 5 running, 1 queued, 1 starting');
  });

  it('cuts a line one column short of the terminal, with an ellipsis', () => {
    expect(fitLine('running 1m5s', 80)).toBe('running 1m5s');
    expect(fitLine('x'.repeat(100), 20)).toBe(`${'x'.repeat(18)}…`);
    expect([...fitLine('x'.repeat(100), 20)].length).toBe(19);
    expect(fitLine('x'.repeat(100), null)).toBe('x'.repeat(100));
  });
});
