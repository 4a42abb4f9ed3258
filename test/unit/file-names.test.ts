/** The names that may travel into or out of a job's working folder, and the frame stream. */
import { describe, expect, it } from 'vitest';
import { dirHeader, endHeader, fileHeader, FrameReader, type FrameEvent } from '../../src/core/file-frames.js';
import { firstClash, includeBase, nameProblem, shownName } from '../../src/core/file-names.js';

describe('nameProblem', () => {
  it('accepts relative names, dots inside parts, unicode', () => {
    for (const n of ['a', 'data/train.csv', '...', '.hidden', 'a..b/c', 'résumé/ü.txt', 'x y', '-rf'])
      expect(nameProblem(n), n).toBeNull();
  });
  it('refuses absolute, "..", ".", empty parts, control characters, backslashes, bad UTF-8', () => {
    const bad: Array<[string, RegExp]> = [
      ['', /empty/],
      ['/etc/passwd', /absolute/],
      ['..', /".."/],
      ['a/../../b', /".."/],
      ['./a', /"\."/],
      ['a//b', /empty part/],
      ['a/', /empty part/],
      ['evil\n..', /control/],
      ['tab\there', /control/],
      ['esc\u001b[2J', /control/],
      ['c1\u0085', /control/],
      ['ls\u2028', /control/],
      ['del\u007f', /control/],
      ['a\\..\\b', /backslash/],
      ['bad\uFFFD', /UTF-8/],
      ['lone\uD800', /UTF-8/],
      [`${'x'.repeat(256)}`, /part longer/],
      [Array.from({ length: 40 }, () => 'd').join('/'), /deeper/],
      [Array.from({ length: 20 }, () => 'y'.repeat(60)).join('/'), /longer than 1024/],
    ];
    for (const [n, why] of bad) expect(nameProblem(n), JSON.stringify(n)).toMatch(why);
    expect(nameProblem('ok\uD83D\uDE00')).toBeNull();
  });
  it('shows a hostile name escaped', () => {
    expect(shownName('a\nb')).toBe('"a\\nb"');
  });
});

describe('includeBase and firstClash', () => {
  it('an include lands under its last part', () => {
    expect(includeBase('data/')).toBe('data');
    expect(includeBase('../lib/util.py')).toBe('util.py');
    expect(includeBase('./x/./')).toBe('x');
    expect(includeBase('/')).toBeNull();
    expect(includeBase('..')).toBeNull();
  });
  it('finds the same name twice, and a file that is also a folder', () => {
    expect(
      firstClash([
        { name: 'a', kind: 'file' },
        { name: 'b', kind: 'file' },
      ]),
    ).toBeNull();
    expect(
      firstClash([
        { name: 'main.py', kind: 'file' },
        { name: 'main.py', kind: 'file' },
      ]),
    ).toBe('main.py');
    expect(
      firstClash([
        { name: 'd', kind: 'dir' },
        { name: 'd/x', kind: 'file' },
        { name: 'd', kind: 'dir' },
      ]),
    ).toBeNull();
    expect(
      firstClash([
        { name: 'd', kind: 'file' },
        { name: 'd/x', kind: 'file' },
      ]),
    ).toBe('d');
    expect(
      firstClash([
        { name: 'd/x', kind: 'file' },
        { name: 'd', kind: 'file' },
      ]),
    ).toBe('d');
  });
});

describe('FrameReader', () => {
  const stream = Buffer.concat([
    dirHeader('d'),
    fileHeader('d/a.txt', 5, false),
    Buffer.from('hello'),
    fileHeader('empty', 0, true),
    Buffer.from('{"skip":"l","why":"a symbolic link"}\n'),
    endHeader(2),
  ]);
  const summarise = (events: FrameEvent[]) => {
    const out: string[] = [];
    let data = '';
    for (const e of events) {
      if (e.kind === 'data') data += e.chunk.toString();
      else if (e.kind === 'fileEnd') {
        out.push(`end:${data}`);
        data = '';
      } else out.push(`${e.record.kind}:${'name' in e.record ? e.record.name : ''}`);
    }
    return out;
  };
  it('reads records and data whatever the chunking', () => {
    const want = ['dir:d', 'file:d/a.txt', 'end:hello', 'file:empty', 'end:', 'skip:l', 'end:'];
    for (const size of [1, 3, 7, 64, stream.length]) {
      const r = new FrameReader();
      const events: FrameEvent[] = [];
      for (let i = 0; i < stream.length; i += size) events.push(...r.push(stream.subarray(i, i + size)));
      expect(summarise(events), `chunks of ${size}`).toEqual(want);
      expect(r.incomplete).toBe(false);
    }
  });
  it('refuses a malformed or endless header, and data after the end', () => {
    expect(() => new FrameReader().push(Buffer.from('not json\n'))).toThrow(/not JSON/);
    expect(() => new FrameReader().push(Buffer.from('{"f":"a","s":-1}\n'))).toThrow(/known record/);
    expect(() => new FrameReader().push(Buffer.alloc(20000, 'a'))).toThrow(/too long/);
    expect(() => new FrameReader().push(Buffer.concat([endHeader(0), Buffer.from('x')]))).toThrow(/after the end/);
  });
  it('knows a stream cut short', () => {
    const r = new FrameReader();
    r.push(Buffer.concat([fileHeader('a', 10, false), Buffer.from('abc')]));
    expect(r.incomplete).toBe(true);
  });
});
