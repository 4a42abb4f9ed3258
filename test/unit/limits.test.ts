import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { registerSubmit, toSubmitOptions } from '../../src/cli/submit.js';
import type { CliApp } from '../../src/cli/app.js';
import { configSchema } from '../../src/config/schema.js';
import { jobShapeProblem } from '../../src/core/job-shape.js';
import {
  builtinLimits,
  describeLimits,
  LIMITS,
  type LimitSpec,
  fillLimitsAddedLater,
  limitsFromConfig,
  limitsFromFlags,
  parseLimit,
  resolveLimits,
} from '../../src/core/limits.js';
import type { Limits } from '../../src/core/types.js';
import { renderWrapper } from '../../src/node/wrapper.js';
import { runningJob } from '../helpers/tui-fixtures.js';

const rows = LIMITS as readonly LimitSpec[];
const TEMPLATE = readFileSync(new URL('../../templates/wrapper.sh', import.meta.url), 'utf8');
const flagsOf = (f: Record<string, string>) =>
  ({ env: [], arg: [], ...f }) as unknown as Parameters<typeof toSubmitOptions>[1];

describe('the limits table', () => {
  it('gives every limit a distinct key, flag, config name and label, a help text and sane bounds', () => {
    for (const field of ['key', 'flag', 'config', 'label'] as const) {
      expect(new Set(rows.map((r) => r[field])).size, field).toBe(rows.length);
    }
    for (const r of rows) {
      expect(r.flag, r.key).toMatch(/^--[a-z][a-z-]*$/);
      expect(r.placeholder, r.key).toMatch(/^[a-z]+$/);
      expect(r.help.length, r.key).toBeGreaterThan(5);
      expect(r.config, r.key).toMatch(/^[a-z][A-Za-z]*$/);
      expect(r.min, r.key).toBeGreaterThanOrEqual(0);
      expect(r.max, r.key).toBeGreaterThan(r.min);
      if (r.builtin === null) expect(r.nullable, r.key).toBe(true);
      else {
        expect(r.builtin, r.key).toBeGreaterThanOrEqual(r.min);
        expect(r.builtin, r.key).toBeLessThanOrEqual(r.max);
      }
    }
  });

  it('keeps the contract: the keys, flags and config names users and the ledger know', () => {
    expect(rows.map((r) => [r.key, r.flag, r.config])).toEqual([
      ['timeoutS', '--timeout', 'timeout'],
      ['graceS', '--grace', 'grace'],
      ['memoryBytes', '--memory', 'memory'],
      ['pids', '--pids', 'pids'],
      ['files', '--files', 'files'],
      ['fileSizeBytes', '--file-size', 'fileSize'],
      ['cpuTimeS', '--cpu-time', 'cpuTime'],
      ['gpus', '--gpus', 'gpus'],
    ]);
  });

  it('gives every limit a wrapper variable the template uses, except gpus (CUDA_VISIBLE_DEVICES)', () => {
    for (const r of rows) {
      if (r.key === 'gpus') expect(r.wrapper).toBeNull();
      else expect(TEMPLATE, r.key).toContain(`{{${r.wrapper?.variable}}}`);
    }
  });

  it('builds the built-in defaults from the table', () => {
    expect(builtinLimits()).toEqual({
      timeoutS: 3600,
      graceS: 10,
      memoryBytes: 16 * 1024 ** 3,
      pids: 1024,
      files: 4096,
      fileSizeBytes: 4 * 1024 ** 3,
      cpuTimeS: null,
      gpus: 0,
    });
    expect(Object.keys(builtinLimits())).toEqual(rows.map((r) => r.key));
  });

  it('describes a job’s limits in table order with label and kind, for the limits line', () => {
    const items = describeLimits(builtinLimits());
    expect(items.map((i) => i.label)).toEqual([
      'timeout',
      'grace',
      'memory',
      'pids',
      'files',
      'file size',
      'cpu time',
      'gpus',
    ]);
    expect(items.find((i) => i.key === 'cpuTimeS')).toEqual({
      key: 'cpuTimeS',
      label: 'cpu time',
      kind: 'duration',
      value: null,
    });
  });
});

describe('resolveLimits', () => {
  const builtin = builtinLimits();
  it('takes flags over the competition over config defaults over the built-in ones', () => {
    const config: Partial<Limits> = { timeoutS: 600, memoryBytes: 2048, pids: 10 };
    const competition: Partial<Limits> = { timeoutS: 300, memoryBytes: null };
    const flags: Partial<Limits> = { timeoutS: 90 };
    const l = resolveLimits(builtin, config, competition, flags);
    expect(l.timeoutS).toBe(90);
    expect(l.memoryBytes).toBeNull();
    expect(l.pids).toBe(10);
    expect(l.files).toBe(builtin.files);
    expect(resolveLimits(builtin, config, competition, {}).timeoutS).toBe(300);
    expect(resolveLimits(builtin, config, undefined, undefined).timeoutS).toBe(600);
    expect(resolveLimits(builtin, undefined, undefined, undefined)).toEqual(builtin);
  });
  it('skips undefined values, keeps null (unlimited), and takes only the limits of a defaults object', () => {
    const defaults = { ...builtin, node: 'gpu1', isolation: 'ulimit' } as Partial<Limits>;
    const l = resolveLimits(builtin, defaults, { pids: undefined, cpuTimeS: null }, { gpus: 2 });
    expect(l).toEqual({ ...builtin, gpus: 2 });
    expect(Object.keys(l)).toEqual(rows.map((r) => r.key));
  });
});

describe('parsing limits', () => {
  it('parses each kind in base units', () => {
    const given: Record<string, string> = { '--timeout': '1h30m', '--memory': '2g', '--gpus': '0' };
    expect(limitsFromFlags((r) => given[r.flag])).toEqual({
      timeoutS: 5400,
      memoryBytes: 2 * 1024 ** 3,
      gpus: 0,
    });
  });
  it.each([
    ['--pids', '0', /--pids must be more than zero/],
    ['--pids', '4194305', /--pids 4194305 is more than the allowed 4194304/],
    ['--files', '1048577', /--files 1048577 is more than the allowed 1048576/],
    ['--gpus', '65', /--gpus 65 is more than the allowed 64/],
    ['--gpus', '-1', /--gpus "-1" is not a whole number/],
    ['--timeout', '31d', /--timeout "31d" is longer than 30 days/],
    ['--timeout', '0.0001s', /--timeout "0.0001s" is less than the smallest allowed 1 ms/],
    ['--memory', '65t', /--memory "65t" is larger than 64 TiB/],
    ['--cpu-time', '0s', /--cpu-time must be more than zero/],
  ])('refuses %s %s outside the bounds, naming the option', (flag, text, re) => {
    const row = rows.find((r) => r.flag === flag) as LimitSpec;
    expect(() => parseLimit(row, text, flag)).toThrow(re);
    expect(() => limitsFromFlags((r) => (r.flag === flag ? text : undefined))).toThrow(re);
  });
  it('reads config values (strings for durations and sizes, numbers for counts, null for unlimited)', () => {
    const got = limitsFromConfig(
      { timeout: '10m', memory: null, pids: 64, fileSize: '1k', gpus: 1 },
      (r) => `defaults.${r.config}`,
    );
    expect(got).toEqual({ timeoutS: 600, memoryBytes: null, pids: 64, fileSizeBytes: 1024, gpus: 1 });
    expect(() => limitsFromConfig({ files: 2_000_000 }, (r) => `f: defaults.${r.config}`)).toThrow(
      /f: defaults\.files 2000000 is more than the allowed 1048576/,
    );
    // a size or duration given as a bare JSON number is refused like a bare option value
    expect(() => limitsFromConfig({ memory: 8 }, (r) => `f: defaults.${r.config}`)).toThrow(
      /f: defaults\.memory "8" has no unit: did you mean "8m" or "8g"\?/,
    );
  });
  it('the config schema has one field per limit, null only where the limit allows it', () => {
    for (const r of rows) {
      const ok = configSchema.safeParse({ defaults: { [r.config]: r.kind === 'count' ? 1 : '1s' } });
      expect(ok.success, r.config).toBe(true);
      expect(configSchema.safeParse({ defaults: { [r.config]: null } }).success, r.config).toBe(r.nullable);
    }
    expect(configSchema.safeParse({ defaults: { pids: 0 } }).success).toBe(false);
    expect(configSchema.safeParse({ defaults: { gpus: 0 } }).success).toBe(true);
  });
});

describe('what derives from the table', () => {
  it('registers one submit option per limit and parses them into Limits', async () => {
    const program = new Command();
    registerSubmit(program, {} as CliApp);
    const submit = program.commands.find((c) => c.name() === 'submit') as Command;
    const flags = submit.options.map((o) => o.long);
    for (const r of rows) expect(flags).toContain(r.flag);
    const opts = toSubmitOptions(
      'x.py',
      flagsOf({ timeout: '90s', fileSize: '1k', cpuTime: '2s', pids: '8', grace: '1s', gpus: '1' }),
    );
    expect(opts.limits).toEqual({ timeoutS: 90, graceS: 1, pids: 8, fileSizeBytes: 1024, cpuTimeS: 2, gpus: 1 });
  });

  it('the ledger shape rule checks every limit: a number, or null where allowed', () => {
    const job = runningJob();
    const missing = {
      ...job,
      limits: Object.fromEntries(Object.entries(job.limits).filter(([k]) => k !== 'timeoutS')),
    };
    expect(jobShapeProblem(missing)).toBe('field "limits.timeoutS" is missing');
    for (const r of rows) {
      const withNull = { ...job, limits: { ...job.limits, [r.key]: null } };
      expect(jobShapeProblem(withNull) === null, r.key).toBe(r.nullable);
      const withText = { ...job, limits: { ...job.limits, [r.key]: '1' } };
      expect(jobShapeProblem(withText), r.key).toMatch(`limits.${r.key}`);
    }
  });

  it('a job recorded before a nullable limit existed reads as unlimited for it; a required one stays missing', () => {
    const job = runningJob();
    for (const r of rows) {
      const limits: Record<string, unknown> = { ...job.limits };
      delete limits[r.key];
      fillLimitsAddedLater(limits);
      if (r.nullable) expect(limits[r.key], r.key).toBeNull();
      else expect(r.key in limits, r.key).toBe(false);
    }
    expect(fillLimitsAddedLater('x')).toBe('x');
  });

  it('renders each limit into its wrapper variable (null as 0, cpu time in whole seconds)', () => {
    const spec = {
      jobId: 'abc',
      command: ['true'],
      env: {},
      cpuShare: { num: 1, den: 1 },
      cudaDevices: null,
      useCgroups: false,
    };
    const out = renderWrapper(TEMPLATE, {
      ...spec,
      limits: { ...builtinLimits(), timeoutS: 1.23456, memoryBytes: null, cpuTimeS: 0.2, pids: 7 },
    });
    expect(out).toContain('TIMEOUT_S=1.235');
    expect(out).toContain('MEMORY_BYTES=0');
    expect(out).toContain('CPU_TIME_S=1');
    expect(out).toContain('PIDS_MAX=7');
    expect(out).toContain(`FILE_SIZE_BYTES=${4 * 1024 ** 3}`);
  });
});
