import { describe, expect, it } from 'vitest';
import { parseSampleLine, parseStatusFile } from '../../src/core/job-files.js';
import {
  arr,
  bool,
  check,
  fitOrNull,
  int,
  literal,
  nullable,
  num,
  obj,
  oneOf,
  optional,
  parseJsonAs,
  problemText,
  record,
  str,
} from '../../src/core/shape.js';

const point = obj({
  name: str,
  at: obj({ x: num, y: num }),
  tags: arr(str),
  weight: nullable(int),
  kind: oneOf(['a', 'b'] as const),
  note: optional(str),
});
const good = { name: 'p', at: { x: 1.5, y: -2 }, tags: ['t'], weight: null, kind: 'a' };

describe('leaf shapes', () => {
  it('accept their own kind only', () => {
    expect(str.test('x')).toBeNull();
    expect(str.test(1)).not.toBeNull();
    expect(num.test(1.5)).toBeNull();
    for (const v of [Number.NaN, Number.POSITIVE_INFINITY, '1', null]) expect(num.test(v)).not.toBeNull();
    expect(int.test(3)).toBeNull();
    for (const v of [1.5, 2 ** 60, '3']) expect(int.test(v)).not.toBeNull();
    expect(bool.test(false)).toBeNull();
    expect(bool.test('false')).not.toBeNull();
    expect(literal(1).test(1)).toBeNull();
    expect(literal(1).test('1')).not.toBeNull();
    expect(literal('v1', 'v2').test('v2')).toBeNull();
    expect(oneOf(['a', 'b']).test('c')).not.toBeNull();
  });

  it('nullable allows null, optional allows absence, neither allows the other', () => {
    expect(nullable(str).test(null)).toBeNull();
    expect(nullable(str).test(undefined)).not.toBeNull();
    expect(optional(str).test(undefined)).toBeNull();
    expect(optional(str).test(null)).not.toBeNull();
  });
});

describe('obj, arr, record', () => {
  it('return the value itself when it fits, unknown fields kept', () => {
    const v = { ...good, extra: [1] };
    const r = check(point, v);
    expect(r.ok && r.value).toBe(v);
    expect(fitOrNull(point, { ...good, note: 'n' })).toEqual({ ...good, note: 'n' });
  });

  it('name the first bad value by its path, with what was expected and found', () => {
    const cases: [unknown, string][] = [
      [{ ...good, name: undefined }, 'field "name" is missing'],
      [{ ...good, at: { x: 1 } }, 'field "at.y" is missing'],
      [{ ...good, at: { x: '1', y: 2 } }, 'field "at.x" is not a number ("1")'],
      [{ ...good, tags: ['a', 3] }, 'field "tags.1" is not a string (3)'],
      [{ ...good, tags: 'a' }, 'field "tags" is not a list of a string ("a")'],
      [{ ...good, weight: 1.5 }, 'field "weight" is not an integer or null (1.5)'],
      [{ ...good, kind: 'c' }, 'field "kind" is not one of a, b ("c")'],
      [{ ...good, note: 5 }, 'field "note" is not a string (5)'],
      [{ ...good, at: [] }, 'field "at" is not an object ([])'],
      [[good], 'it is not an object'],
      [null, 'it is not an object'],
    ];
    for (const [v, text] of cases) {
      const r = check(point, v);
      expect(r.ok, text).toBe(false);
      if (!r.ok) expect(problemText(r.problem)).toBe(text);
    }
  });

  it('checks every value of a record and names the key', () => {
    const env = record(str);
    expect(env.test({ A: 'x', B: '' })).toBeNull();
    const p = env.test({ A: 'x', B: 2 });
    expect(p && problemText(p)).toBe('field "B" is not a string (2)');
    expect(env.test(['x'])).not.toBeNull();
  });

  it('shows at most 40 characters of a bad value', () => {
    const p = str.test({ long: 'x'.repeat(100) });
    expect(p && problemText({ ...p, path: ['f'] })).toMatch(/^field "f" is not a string \(.{40}\)$/);
  });
});

describe('parseJsonAs', () => {
  it('treats empty, torn and wrongly shaped text as absent', () => {
    const s = obj({ a: int });
    expect(parseJsonAs(s, '{"a":1}')).toEqual({ a: 1 });
    for (const t of [undefined, '', '  \n', '{"a":', '{"a":"1"}', '[1]', 'null']) expect(parseJsonAs(s, t)).toBeNull();
  });
});

describe('the job files', () => {
  const sample = { t: 1, rssBytes: 2, cpuPct: 0.5, procs: 1, threads: 2, openFiles: 3, folderBytes: 4, gpu: null };
  it('samples: all fields, GPUs checked too', () => {
    expect(parseSampleLine(JSON.stringify(sample))).toEqual(sample);
    const gpu = [{ index: 0, memUsedBytes: 5, utilPct: null, jobMemBytes: null }];
    expect(parseSampleLine(JSON.stringify({ ...sample, gpu }))).toEqual({ ...sample, gpu });
    expect(parseSampleLine(JSON.stringify({ ...sample, gpu: [{ index: 0 }] }))).toBeNull();
    expect(parseSampleLine(JSON.stringify({ t: 1, rssBytes: 2 }))).toBeNull();
  });

  it('status.json: the states, limits and cgroup kinds the supervisor writes, nothing else', () => {
    const status = {
      version: 1,
      state: 'running',
      supervisorPid: 10,
      pid: 11,
      pgid: 11,
      bootId: 'b',
      startedAtMs: 1,
      endedAtMs: null,
      exitCode: null,
      signal: null,
      timedOut: false,
      cancelled: false,
      limitFired: null,
      killedAfterGrace: false,
      cpuSeconds: null,
      cgroup: 'v2',
      oomKills: null,
      pidsRefused: null,
      kernelOom: [],
      memoryPeakBytes: null,
      subreaper: true,
      leftovers: 0,
    };
    expect(parseStatusFile(JSON.stringify(status))).toEqual(status);
    const { memoryPeakBytes: _m, subreaper: _s, ...older } = status;
    expect(parseStatusFile(JSON.stringify(older))).toEqual(older);
    for (const bad of [{ state: 'won' }, { limitFired: 'admin' }, { cgroup: 'v3' }, { version: 2 }, { pid: 1.5 }])
      expect(parseStatusFile(JSON.stringify({ ...status, ...bad })), JSON.stringify(bad)).toBeNull();
  });
});
