import { describe, expect, it } from 'vitest';
import { isIdLike, makeJobId, matchPrefix } from '../../src/core/ids.js';
import { canMove, finish, moveTo } from '../../src/core/job.js';
import { exitCodeForVerdict, worstExitCode } from '../../src/core/exit-codes.js';
import { type Job, type Verdict, VERDICT_CLASSES, type VerdictClass } from '../../src/core/types.js';
import { builtinLimits } from '../../src/core/limits.js';

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
    ...builtinLimits(),
    timeoutS: 1,
    graceS: 1,
    memoryBytes: null,
    pids: null,
    files: null,
    fileSizeBytes: null,
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
    // when gpuq noticed goes to the history; startedAt/endedAt are the supervisor's (withSupervisorTimes)
    expect(running.history.at(-1)).toEqual({ state: 'running', at: '2026-01-01T00:00:01.000Z', note: 'started' });
    expect(running.startedAt).toBeNull();
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
    expect(done.endedAt).toBeNull();
    expect(done.history.at(-1)?.at).toBe('2026-01-01T00:00:02.000Z');
    expect(done.history.map((h) => h.state)).toEqual(['pending', 'running', 'done']);
    expect(() => moveTo(done, 'running', 'x')).toThrow(/cannot move/);
    expect(canMove('running', 'pending')).toBe(false);
  });
});

describe('exit codes', () => {
  // The contract's table (CONTRACT.md "Verdicts and exit codes"), written out here on purpose:
  // the test must not derive the expected codes from the code under test.
  const CONTRACT: Record<VerdictClass, number> = {
    succeeded: 0,
    failed: 10,
    timeout: 11,
    oom: 12,
    gpu_oom: 13,
    limit: 14,
    signaled: 15,
    cancelled: 16,
    lost: 17,
    grading_failed: 18,
    rejected: 19,
  };
  it.each(Object.entries(CONTRACT))('maps the verdict %s to exit %i', (cls, code) => {
    expect(exitCodeForVerdict(cls as VerdictClass)).toBe(code);
  });
  it('knows every verdict class, and the contract table names every one', () => {
    expect([...VERDICT_CLASSES].sort()).toEqual(Object.keys(CONTRACT).sort());
  });
  it('takes the worst (highest) code of several', () => {
    expect(worstExitCode([0, 11, 10])).toBe(11);
    expect(worstExitCode([0, 0])).toBe(0);
    expect(worstExitCode([16, 18, 10])).toBe(18);
  });
});
