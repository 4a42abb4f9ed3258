import { describe, expect, it } from 'vitest';
import { pickGpus, rankNodes, relativeLoad } from '../../src/core/schedule.js';

const n = (
  name: string,
  runningJobs: number,
  load: number | null,
  cpus: number | null = null,
  gpus: number[] = [0],
) => ({ name, runningJobs, load, cpus, gpus });

describe('rankNodes', () => {
  it('puts fewest running gpuq jobs first, whatever the load', () => {
    expect(rankNodes([n('busy', 3, 0), n('idle', 0, 50)], 0).map((x) => x.name)).toEqual(['idle', 'busy']);
  });
  it('breaks ties on load per CPU, then name', () => {
    const ranked = rankNodes([n('small', 1, 2, 2), n('big', 1, 8, 64), n('same', 1, 8, 64), n('unknown', 1, null)], 0);
    expect(ranked.map((x) => x.name)).toEqual(['big', 'same', 'small', 'unknown']);
  });
  it('compares plain load when the CPU count is unknown', () => {
    expect(rankNodes([n('b', 0, 3), n('a', 0, 1)], 0).map((x) => x.name)).toEqual(['a', 'b']);
    expect(relativeLoad({ load: 4, cpus: null })).toBe(4);
    expect(relativeLoad({ load: 4, cpus: 0 })).toBe(4);
    expect(relativeLoad({ load: null, cpus: 8 })).toBe(Infinity);
  });
  it('drops nodes without enough GPUs and keeps extra fields', () => {
    const ranked = rankNodes(
      [
        { ...n('one', 0, 0, 1, [0]), extra: 1 },
        { ...n('two', 5, 9, 1, [0, 1]), extra: 2 },
      ],
      2,
    );
    expect(ranked).toEqual([{ ...n('two', 5, 9, 1, [0, 1]), extra: 2 }]);
  });
  it('returns nothing when no node qualifies', () => {
    expect(rankNodes([n('a', 0, 0, 1, [])], 1)).toEqual([]);
  });
});

describe('pickGpus', () => {
  it('picks the least used, lowest index first', () => {
    expect(
      pickGpus(
        [3, 2, 1, 0],
        new Map([
          [0, 1],
          [1, 1],
        ]),
        2,
      ),
    ).toEqual([2, 3]);
    expect(pickGpus([0, 1], new Map(), 0)).toEqual([]);
  });
  it('prefers an unused GPU over less used ones', () => {
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
  });
  it('refuses to pick more than there are', () => {
    expect(() => pickGpus([0], new Map(), 2)).toThrow(/2 GPUs of 1/);
  });
});
