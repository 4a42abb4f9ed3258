import { describe, expect, it } from 'vitest';
import { jobShapeProblem } from '../../src/core/job-shape.js';
import { doneJob, runningJob } from '../helpers/tui-fixtures.js';

/** A copy of `job` with the value at a dotted path replaced (or removed, for `undefined`). */
function edit(job: object, path: string, value: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(job)) as Record<string, unknown>;
  const keys = path.split('.');
  let cur = copy as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
  const last = keys[keys.length - 1]!;
  if (value === undefined) delete cur[last];
  else cur[last] = value;
  return copy;
}

describe('jobShapeProblem', () => {
  it('accepts the jobs gpuq writes: running, done, without a remote yet, with env and args', () => {
    expect(jobShapeProblem(runningJob())).toBeNull();
    expect(jobShapeProblem(doneJob())).toBeNull();
    expect(jobShapeProblem(runningJob({ state: 'pending', remote: null, startedAt: null }))).toBeNull();
    expect(
      jobShapeProblem(runningJob({ env: { A: 'x y' }, args: ['--n', '3'], competition: 'c1', image: 'img' })),
    ).toBeNull();
    expect(jobShapeProblem({ ...runningJob(), extra: 1 })).toBeNull();
  });

  it('names a missing field, nested ones by their path', () => {
    for (const path of [
      'id',
      'node',
      'state',
      'limits',
      'history',
      'remote',
      'verdict',
      'limits.timeoutS',
      'limits.memoryBytes',
    ]) {
      expect(jobShapeProblem(edit(runningJob(), path, undefined)), path).toBe(`field "${path}" is missing`);
    }
  });

  it('names a field of the wrong kind and shows the value', () => {
    const cases: [string, unknown, string][] = [
      ['state', 'flying', 'state'],
      ['isolation', 'vm', 'isolation'],
      ['gpus', ['0'], 'gpus.0'],
      ['limits.timeoutS', '1h', 'limits.timeoutS'],
      ['limits.pids', Number.NaN, 'limits.pids'],
      ['env', { A: 1 }, 'env.A'],
      ['args', 'a b', 'args'],
      ['startedAt', 0, 'startedAt'],
      ['history', [{ state: 'running' }], 'history.0.at'],
      ['history', 'none', 'history'],
      ['remote', { dir: 5 }, 'remote.dir'],
      ['limits', [], 'limits'],
    ];
    for (const [path, value, named] of cases) {
      expect(jobShapeProblem(edit(runningJob(), path, value)), path).toMatch(
        new RegExp(`^field "${named.replaceAll('.', '\\.')}" (has a value of the wrong kind|is missing)`),
      );
    }
    expect(jobShapeProblem(edit(runningJob(), 'state', 'flying'))).toBe(
      'field "state" has a value of the wrong kind ("flying")',
    );
  });

  it('checks a verdict: its class, summary and lists', () => {
    expect(jobShapeProblem(edit(doneJob(), 'verdict.class', 'exploded'))).toBe(
      'field "verdict.class" has a value of the wrong kind ("exploded")',
    );
    expect(jobShapeProblem(edit(doneJob(), 'verdict.hints', undefined))).toBe('field "verdict.hints" is missing');
    expect(jobShapeProblem(edit(doneJob(), 'verdict.evidence', ['ok', 3]))).toBe(
      'field "verdict.evidence.1" has a value of the wrong kind (3)',
    );
  });

  it('refuses what is not an object', () => {
    for (const v of [null, 'job', 3, [runningJob()]]) expect(jobShapeProblem(v)).toBe('it is not an object');
  });
});
