import { describe, expect, it } from 'vitest';
import { parseCount, parseDuration, parseSize } from '../../src/core/units.js';
import { UserError } from '../../src/core/errors.js';

describe('parseDuration', () => {
  it.each([
    ['90s', 90],
    ['30m', 1800],
    ['2h', 7200],
    ['1h30m', 5400],
    ['1d', 86400],
    ['500ms', 0.5],
    ['1.5h', 5400],
    [' 10S ', 10],
  ])('%s -> %d s', (text, s) => expect(parseDuration(text, '--timeout')).toBe(s));

  it.each(['', '0s', '-5s', 'abc', '5x', '1h1h', 's', '31d', '1e3', 'm5'])(
    'refuses %j, naming the option and the form',
    (text) => {
      expect(() => parseDuration(text, '--timeout')).toThrow(UserError);
      try {
        parseDuration(text, '--timeout');
      } catch (e) {
        expect((e as UserError).exitCode).toBe(2);
        expect((e as Error).message).toContain('--timeout');
        expect((e as Error).message).toMatch(/duration like 90s/);
      }
    },
  );
});

describe('parseSize', () => {
  it.each([
    ['512m', 512 * 1024 ** 2],
    ['2g', 2 * 1024 ** 3],
    ['1.5G', 1.5 * 1024 ** 3],
    ['64MiB', 64 * 1024 ** 2],
    ['100k', 102400],
    ['4096b', 4096],
    ['1 g', 1024 ** 3],
  ])('%s -> %d bytes', (text, b) => expect(parseSize(text, '--memory')).toBe(b));

  it.each(['', '0', '0g', '-1g', 'lots', '1x', '1gg', '65t', 'g'])('refuses %j', (text) => {
    expect(() => parseSize(text, '--memory')).toThrow(/--memory/);
  });
});

describe('bare numbers', () => {
  it.each([
    ['--timeout', '5', /--timeout "5" has no unit: did you mean --timeout 5s or --timeout 5m\?/],
    ['--grace', '1.5', /--grace "1.5" has no unit: did you mean --grace 1.5s or --grace 1.5m\?/],
  ])('a duration without a unit is refused with both readings: %s %s', (what, text, re) => {
    expect(() => parseDuration(text, what)).toThrow(re);
  });
  it.each([
    ['--memory', '500', /--memory "500" has no unit: did you mean --memory 500m or --memory 500g\?/],
    ['config.json: defaults.memory', '8', /defaults.memory "8" has no unit: did you mean "8m" or "8g"\?/],
  ])('a size without a unit is refused with both readings: %s %s', (what, text, re) => {
    expect(() => parseSize(text, what)).toThrow(re);
  });
  it('refuses with exit 2 and says what to type', () => {
    try {
      parseSize('500', '--memory');
      expect.unreachable();
    } catch (e) {
      expect((e as UserError).exitCode).toBe(2);
      expect((e as UserError).hint).toMatch(/Give the unit: 500m or 500g/);
    }
  });
  it('zero is refused as zero, not as a missing unit', () => {
    expect(() => parseDuration('0', '--timeout')).toThrow(/--timeout must be more than zero/);
    expect(() => parseSize('0', '--memory')).toThrow(/--memory must be more than zero/);
  });
});

describe('parseCount', () => {
  it('accepts whole positive numbers', () => expect(parseCount('64', '--pids')).toBe(64));
  it.each(['0', '-1', '1.5', 'many', '', '99999999999'])('refuses %j', (t) =>
    expect(() => parseCount(t, '--pids')).toThrow(/--pids/),
  );
});
