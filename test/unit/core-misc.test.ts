import { describe, expect, it } from 'vitest';
import { isIdLike, makeJobId, matchPrefix } from '../../src/core/ids.js';
import { canMove, finish, moveTo } from '../../src/core/job.js';
import { pickGpus, rankNodes } from '../../src/core/schedule.js';
import { exitCodeForVerdict, worstExitCode } from '../../src/core/exit-codes.js';
import type { Job, Verdict } from '../../src/core/types.js';

const job = (over: Partial<Job> = {}): Job => ({
  id: 'abc12345',
  name: 'x',
  file: '/x.py',
  node: 'local',
  gpus: [],
  competition: null,
  state: 'pending',
  isolation: 'ulimit',
  image: null,
  limits: {
    timeoutS: 1,
    graceS: 1,
    memoryBytes: null,
    pids: null,
    files: null,
    fileSizeBytes: null,
    cpuTimeS: null,
    gpus: 0,
  },
  env: {},
  args: [],
  createdAt: '2026-01-01T00:00:00.000Z',
  startedAt: null,
  endedAt: null,
  history: [{ state: 'pending', at: '2026-01-01T00:00:00.000Z', note: null }],
  remote: null,
  verdict: null,
  ...over,
});

describe('ids', () => {
  it('makes 8 characters of [0-9a-z]', () => {
    const id = makeJobId(new Uint8Array([0, 35, 36, 71, 255, 1, 2, 3]));
    expect(id).toMatch(/^[0-9a-z]{8}$/);
    expect(isIdLike(id)).toBe(true);
    expect(isIdLike('../x')).toBe(false);
  });
  it('resolves exact ids, unique prefixes and ambiguity', () => {
    const items = [{ id: 'ab1' }, { id: 'ab2' }, { id: 'c' }, { id: 'cd' }];
    expect(matchPrefix(items, 'ab1')).toEqual({ kind: 'one', item: { id: 'ab1' } });
    expect(matchPrefix(items, 'ab')).toEqual({ kind: 'many', items: [{ id: 'ab1' }, { id: 'ab2' }] });
    expect(matchPrefix(items, 'c')).toEqual({ kind: 'one', item: { id: 'c' } });
    expect(matchPrefix(items, 'z')).toEqual({ kind: 'none' });
  });
});

describe('job state machine', () => {
  it('follows the contract lifecycle and records history', () => {
    const running = moveTo(job(), 'running', '2026-01-01T00:00:01.000Z', 'started');
    expect(running.startedAt).toBe('2026-01-01T00:00:01.000Z');
    const v: Verdict = {
      class: 'succeeded',
      cause: null,
      exitCode: 0,
      signal: null,
      timedOut: false,
      summary: 'ok',
      evidence: [],
      hints: [],
    };
    const done = finish(running, v, '2026-01-01T00:00:02.000Z');
    expect(done.state).toBe('done');
    expect(done.endedAt).toBe('2026-01-01T00:00:02.000Z');
    expect(done.history.map((h) => h.state)).toEqual(['pending', 'running', 'done']);
    expect(() => moveTo(done, 'running', 'x')).toThrow(/cannot move/);
    expect(canMove('running', 'pending')).toBe(false);
  });
});

describe('scheduling', () => {
  it('ranks nodes by running jobs, then load, and drops those without enough GPUs', () => {
    const ranked = rankNodes(
      [
        { name: 'a', runningJobs: 2, load: 0.1, gpus: [0, 1] },
        { name: 'b', runningJobs: 1, load: 5, gpus: [0] },
        { name: 'c', runningJobs: 1, load: 1, gpus: [0, 1] },
        { name: 'd', runningJobs: 0, load: 0, gpus: [] },
      ],
      1,
    );
    expect(ranked.map((n) => n.name)).toEqual(['c', 'b', 'a']);
  });
  it('picks the least used GPUs', () => {
    expect(
      pickGpus(
        [0, 1, 2, 3],
        new Map([
          [0, 2],
          [1, 0],
          [2, 1],
        ]),
        2,
      ),
    ).toEqual([1, 3]);
    expect(pickGpus([0, 1], new Map(), 0)).toEqual([]);
    expect(() => pickGpus([0], new Map(), 2)).toThrow();
  });
});

describe('exit codes', () => {
  it('maps verdicts as the contract says and takes the worst', () => {
    expect(exitCodeForVerdict('succeeded')).toBe(0);
    expect(exitCodeForVerdict('failed')).toBe(10);
    expect(exitCodeForVerdict('grading_failed')).toBe(18);
    expect(worstExitCode([0, 11, 10])).toBe(11);
  });
});
