/**
 * The pure parts of the GPU queue (src/core/queue.ts): priority parsing, the ticket order (the
 * same rule templates/queue.py sorts by), reasons, the estimated start and node choice.
 */
import { describe, expect, it } from 'vitest';
import { parseQueueFile } from '../../src/core/job-files.js';
import {
  compareTickets,
  estimateStartMs,
  parsePriority,
  pickByExpectedStart,
  queueReason,
  queueView,
  ticketName,
} from '../../src/core/queue.js';
import type { QueueFile } from '../../src/core/types.js';

const free = (index: number) => ({
  index,
  state: 'free' as const,
  job: null,
  submitter: null,
  pid: null,
  user: null,
  sinceMs: null,
  timeoutS: null,
  memMiB: null,
});

function q(over: Partial<QueueFile>): QueueFile {
  return {
    version: 1,
    position: 1,
    need: 1,
    priority: 0,
    ahead: [],
    aheadCount: 0,
    length: 1,
    gpus: [free(0)],
    updatedAtMs: 0,
    ...over,
  };
}

describe('parsePriority', () => {
  it('takes integers from -1000 to 1000', () => {
    expect(parsePriority('0')).toBe(0);
    expect(parsePriority('-1000')).toBe(-1000);
    expect(parsePriority('+7')).toBe(7);
  });
  it('refuses fractions, words and out-of-range values (exit 2)', () => {
    for (const bad of ['1.5', 'high', '', '1001', '-1001', '1e3'])
      expect(() => parsePriority(bad), bad).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
});

describe('the ticket order', () => {
  it('puts higher priority first, then the lower sequence number, never the clock', () => {
    const t = [
      { priority: 0, seq: 1, jobId: 'a' },
      { priority: 5, seq: 3, jobId: 'c' },
      { priority: -3, seq: 2, jobId: 'b' },
      { priority: 5, seq: 4, jobId: 'd' },
    ];
    expect([...t].sort(compareTickets).map((x) => x.jobId)).toEqual(['c', 'd', 'a', 'b']);
  });
  it('names tickets so that sorting the names sorts the queue (as queue.py does)', () => {
    const t = [
      { priority: 0, seq: 10, jobId: 'a' },
      { priority: 1000, seq: 99, jobId: 'b' },
      { priority: -1000, seq: 1, jobId: 'c' },
      { priority: 0, seq: 9, jobId: 'd' },
    ];
    const byName = [...t].sort((x, y) => (ticketName(x, 1, 60) < ticketName(y, 1, 60) ? -1 : 1));
    expect(byName).toEqual([...t].sort(compareTickets));
    expect(ticketName({ priority: 0, seq: 7, jobId: 'abc' }, 2, 90)).toBe('q-1000-000000000007-abc-2-90');
  });
});

describe('queueReason', () => {
  it('names the jobs ahead and how many have a higher priority', () => {
    const r = queueReason(
      q({
        position: 3,
        aheadCount: 2,
        ahead: [
          { gpus: 1, timeoutS: 60, priority: 5 },
          { gpus: 1, timeoutS: 60, priority: 0 },
        ],
      }),
      'gpu1',
    );
    expect(r).toBe('behind 2 jobs on gpu1 (1 of higher priority)');
  });
  it('names who holds the GPUs the head waits for: a job, an orphan, a foreign process', () => {
    const r = queueReason(
      q({
        need: 2,
        gpus: [
          { ...free(0), state: 'held', job: 'abc', submitter: 'ann@laptop', sinceMs: Date.UTC(2025, 0, 1, 12, 0) },
          { ...free(1), state: 'orphan', job: 'def' },
          { ...free(2), state: 'foreign', pid: 4242, user: 'bob', memMiB: 3072 },
        ],
      }),
      'gpu1',
    );
    expect(r).toBe(
      'waiting for 2 free GPUs on gpu1: GPU 0 is held by job abc (ann@laptop, since 12:00 UTC); ' +
        'GPU 1 is still held by a process of job def, whose supervisor is gone; ' +
        'GPU 2 is used outside gpuq by pid 4242 (bob, 3.0 GiB)',
    );
  });
});

describe('estimateStartMs', () => {
  const now = 1_000_000;
  it('is now when a GPU is free and nobody is ahead', () => {
    expect(estimateStartMs(q({}), now)).toBe(now);
  });
  it('follows the running jobs time limits and the jobs ahead, in order', () => {
    const held = (index: number, sinceMs: number, timeoutS: number) => ({
      ...free(index),
      state: 'held' as const,
      job: 'x',
      sinceMs,
      timeoutS,
    });
    // GPU 0 frees at now+60 s, GPU 1 at now+120 s; one 1-GPU job of 30 s is ahead
    const f = q({
      position: 2,
      aheadCount: 1,
      ahead: [{ gpus: 1, timeoutS: 30, priority: 0 }],
      gpus: [held(0, now, 60), held(1, now - 60_000, 180)],
    });
    // the job ahead takes GPU 0 at +60 s (ends +90 s); this one starts when the next GPU frees: +90 s
    expect(estimateStartMs(f, now)).toBe(now + 90_000);
    // needing both GPUs: after the job ahead started (+60 s), when both are free: max(+90, +120)
    expect(estimateStartMs({ ...f, need: 2 }, now)).toBe(now + 120_000);
  });
  it('is unknown behind a foreign process or an orphan', () => {
    expect(estimateStartMs(q({ gpus: [{ ...free(0), state: 'foreign', pid: 1 }] }), now)).toBeNull();
    expect(queueView(q({ gpus: [{ ...free(0), state: 'orphan' }] }), 'n', now).estimatedStart).toBeNull();
  });
});

describe('queue.json from a node', () => {
  it('is checked against its shape: a wrong one is absent, never a crash', () => {
    expect(parseQueueFile(JSON.stringify(q({})))).not.toBeNull();
    expect(parseQueueFile('{"version":1,"position":"first"}')).toBeNull();
    expect(parseQueueFile('not json')).toBeNull();
  });
});

describe('pickByExpectedStart', () => {
  it('prefers the node expected to start the job first, unknown last, ties in the given order', () => {
    const nodes = [
      { name: 'a', waitMs: null },
      { name: 'b', waitMs: 60_000 },
      { name: 'c', waitMs: 0 },
      { name: 'd', waitMs: 60_000 },
    ];
    expect(pickByExpectedStart(nodes).map((n) => n.name)).toEqual(['c', 'b', 'd', 'a']);
  });
});
