import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { renderTemplate } from '../../src/core/template.js';
import { sh, shPath } from '../../src/core/quote.js';
import { commandFor, renderWrapper } from '../../src/node/wrapper.js';
import { builtinLimits } from '../../src/core/limits.js';

const hostile = [
  "it's",
  '$(touch /tmp/pwned)',
  '`id`',
  'a b',
  '',
  '\n',
  '"quoted"',
  '\\',
  '!',
  '*',
  '-n',
  'ü ñ 日本',
  '${HOME}',
];

describe('sh', () => {
  it.each(hostile)('round-trips %j through bash literally', (v) => {
    const out = execFileSync('bash', ['-c', `printf '%s' ${sh(v)}`]).toString();
    expect(out).toBe(v);
  });
  it('shPath keeps ~/ as the home folder and quotes the rest', () => {
    expect(
      execFileSync('bash', ['-c', `printf '%s' ${shPath('~/a b/$(x)')}`], { env: { HOME: '/h' } }).toString(),
    ).toBe('/h/a b/$(x)');
    expect(shPath('/abs/x y')).toBe("'/abs/x y'");
  });
});

describe('renderTemplate', () => {
  it('quotes scalars and lists', () => {
    const out = renderTemplate('A={{A}}\nB=({{@B}})', { A: "x'y", B: ['1', 'two words'] });
    const echoed = execFileSync('bash', ['-c', `${out}\nprintf '%s|' "$A" "\${B[@]}"`]).toString();
    expect(echoed).toBe("x'y|1|two words|");
  });
  it('refuses a missing variable', () => expect(() => renderTemplate('{{A}} {{B}}', { A: 1 })).toThrow(/missing: B/));
  it('refuses an unused variable', () =>
    expect(() => renderTemplate('{{A}}', { A: 1, C: 2 })).toThrow(/not in the template: C/));
  it('refuses a list where a word goes', () => expect(() => renderTemplate('{{A}}', { A: ['x'] })).toThrow(/list/));
});

describe('renderWrapper', () => {
  const template = readFileSync(new URL('../../templates/wrapper.sh', import.meta.url), 'utf8');
  const limits = {
    ...builtinLimits(),
    timeoutS: 60,
    graceS: 5,
    memoryBytes: null,
    pids: 64,
    files: 128,
    fileSizeBytes: 1024,
    cpuTimeS: 2.5,
  };
  it('renders every variable of the real template into valid bash', () => {
    const out = renderWrapper(template, {
      jobId: 'abc',
      command: ['python3', 'x.py', ...hostile],
      env: { K: '$(id)' },
      limits,
      cpuShare: { num: 1, den: 4 },
      cudaDevices: '',
      useCgroups: false,
    });
    // No placeholder left ({{.Id}} and friends are docker's own --format templates).
    expect(out).not.toMatch(/\{\{@?[A-Z]/);
    execFileSync('bash', ['-n'], { input: out });
    expect(out).toContain('CPU_TIME_S=3');
    expect(out).toContain('MEMORY_BYTES=0');
  });
  it('picks the command by file type', () => {
    expect(commandFor('a.py', 'python3', false, ['--x'])).toEqual(['python3', 'a.py', '--x']);
    expect(commandFor('-a.py', 'python3', false, [])).toEqual(['python3', './-a.py']);
    expect(commandFor('run.sh', 'python3', false, [])).toEqual(['bash', 'run.sh']);
    expect(commandFor('tool', 'python3', true, [])).toEqual(['./tool']);
    expect(commandFor('data.csv', 'python3', false, [])).toBeNull();
  });
});
