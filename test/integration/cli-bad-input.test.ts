/**
 * End to end on the embedded local node (the real binary, real supervisors, real processes; each
 * test its own GPUQ_HOME), split from cli-local.test.ts so vitest runs the parts in parallel:
 * bad input: exit 2, one line, nothing recorded; unknown and ambiguous ids.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { gpuq, gpuqJson, type Home, makeHome, type RunResult, tempDir, writeProgram } from '../helpers/cli.js';
import { gpuqInProcess } from '../helpers/in-process.js';

/** A GPUQ_HOME removed, with what is left of its jobs, when the test ends. */
function home(config?: unknown): Promise<Home> {
  return makeHome(config);
}

describe('bad input: exit 2, one line, nothing recorded', () => {
  it('refuses each bad input without recording anything', async () => {
    const h = await home();
    const dir = await tempDir('gpuq-bad-');
    const ok = join(dir, 'ok.py');
    writeFileSync(ok, 'print(1)\n');
    writeFileSync(join(dir, 'empty.py'), '');
    writeFileSync(join(dir, 'bin.py'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]));
    writeFileSync(join(dir, 'big.py'), Buffer.alloc(11 * 1024 * 1024, 0x23));
    mkdirSync(join(dir, 'adir'));
    writeFileSync(join(dir, 'nb.ipynb'), '{"cells": [], "nbformat": 4}\n');
    const cases: [string[], RegExp][] = [
      [['submit', join(dir, 'missing.py')], /missing\.py/],
      [['submit', join(dir, 'adir')], /folder|directory/],
      [['submit', join(dir, 'empty.py')], /empty/],
      [['submit', join(dir, 'bin.py')], /binary/],
      [['submit', join(dir, 'big.py')], /10 MiB|too large/],
      [['submit', join(dir, 'nb.ipynb')], /is a Jupyter notebook[\s\S]*jupyter nbconvert --to script/],
      // Bad limit values: every option's, in cli-contract.test.ts ("bad values for every limit option");
      // here one, and the two with no unit, whose message is their own.
      [['submit', ok, '--timeout', 'soon'], /--timeout/],
      [['submit', ok, '--memory', '500'], /has no unit: did you mean --memory 500m or --memory 500g\?/],
      [['submit', ok, '--timeout', '5'], /has no unit: did you mean --timeout 5s or --timeout 5m\?/],
      [['submit', ok, '--node', 'nowhere'], /nowhere/],
      [['submit', ok, '--env', 'NOEQUALS'], /--env/],
      [['submit', ok, '--frobnicate'], /frobnicate/],
      [['frobnicate'], /frobnicate/],
    ];
    // In this process (main(), what the binary runs): refused before any node is asked, so no
    // node start each; a file case, an option case and an unknown command also through the binary.
    const results: RunResult[] = [];
    for (const [args] of cases) results.push(await gpuqInProcess(h, args));
    const viaBinary = [0, 8, cases.length - 1];
    const binary = await Promise.all(viaBinary.map((i) => gpuq(h, cases[i]![0])));
    viaBinary.forEach((i, k) => {
      expect(binary[k], `${cases[i]![0].join(' ')} through the binary`).toEqual(results[i]);
    });
    for (const [i, [args, message]] of cases.entries()) {
      const r = results[i]!;
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr, args.join(' ')).not.toMatch(/\n\s+at /);
      expect(r.stdout, args.join(' ')).toBe('');
    }
    const list = await gpuqJson<Job[]>(h, ['list', '--all']);
    expect(list).toEqual([]);
  });

  it('the size limit is configurable', async () => {
    const h = await home({ defaults: { maxFileSize: '1k' } });
    const prog = await writeProgram('two-k.py', `# ${'x'.repeat(2048)}\nprint(1)\n`);
    const r = await gpuq(h, ['submit', prog]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/1 KiB|maxFileSize/);
  });

  it('refuses a bad config naming the file and the field', async () => {
    const h = await home({ defaults: { timeout: 'forever' } });
    const r = await gpuq(h, ['list']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(join(h.dir, 'config.json'));
    expect(r.stderr).toMatch(/timeout/);
  });

  it('an unknown id exits 4; an ambiguous prefix exits 4 listing the candidates', async () => {
    const h = await home();
    const prog = await writeProgram('ok.py', 'print(1)\n');
    expect((await gpuq(h, ['submit', prog, '--wait', '-q'])).code).toBe(0);
    const path = join(h.dir, 'ledger.json');
    const data = JSON.parse(readFileSync(path, 'utf8')) as { jobs: Job[] };
    const base = data.jobs[0] as Job;
    data.jobs.push({ ...base, id: 'zz000001' }, { ...base, id: 'zz000002' });
    writeFileSync(path, JSON.stringify(data));
    const unknown = await gpuq(h, ['show', 'qqqqqqqq']);
    expect(unknown.code).toBe(4);
    const amb = await gpuq(h, ['show', 'zz']);
    expect(amb.code).toBe(4);
    expect(amb.stderr).toContain('zz000001');
    expect(amb.stderr).toContain('zz000002');
    expect((await gpuq(h, ['wait', 'zz'])).code).toBe(4);
    expect((await gpuq(h, ['show', 'zz000002'])).code).toBe(0);
  });
});
