/**
 * node/batch.ts: the bulk launch script's pieces. ansiC's output is checked by bash itself (the
 * exact bytes come back), splitCommon and parseBatchOutput as data.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ansiC, parseBatchOutput, splitCommon } from '../../src/node/batch.js';
import { sectionMarker } from '../../src/node/commands.js';

describe('ansiC', () => {
  it('gives bash the exact bytes back, whatever they are (but NUL)', () => {
    const all = Buffer.from(Array.from({ length: 255 }, (_, i) => i + 1));
    const texts = [Buffer.from("it's a \\ back'slash\n\ttab"), Buffer.from('héllo ✓ 𝄞\r\n'), all, Buffer.from('')];
    for (const t of texts) {
      const lit = ansiC(t) as string;
      const out = execFileSync('bash', ['-c', `printf '%s' ${lit}`]);
      expect(out.equals(t)).toBe(true);
    }
    // \x followed by a hex digit stays two digits
    expect(execFileSync('bash', ['-c', `printf '%s' ${ansiC('\u0001a\u0002F')}`]).toString()).toBe('\u0001a\u0002F');
    expect(ansiC(Buffer.from([0x61, 0, 0x62]))).toBeNull();
  });
});

describe('splitCommon', () => {
  it('finds the shared prefix and suffix and keeps each middle', () => {
    const r = splitCommon(['head A1 tail', 'head B22 tail', 'head C tail']);
    expect(r.prefix).toBe('head ');
    expect(r.suffix).toBe(' tail');
    expect(r.middles).toEqual(['A1', 'B22', 'C']);
    for (const [i, t] of ['head A1 tail', 'head B22 tail', 'head C tail'].entries())
      expect(r.prefix + r.middles[i] + r.suffix).toBe(t);
  });
  it('never overlaps prefix and suffix, and keeps surrogate pairs whole', () => {
    const texts = ['aXa', 'aa', 'a\u{1d11e}a', 'a\u{1d11f}a'];
    const r = splitCommon(texts);
    for (const [i, t] of texts.entries()) expect(r.prefix + r.middles[i] + r.suffix).toBe(t);
    const one = splitCommon(['same', 'same']);
    expect(one.prefix + (one.middles[0] as string) + one.suffix).toBe('same');
    const pair = splitCommon(['x\u{1d11e}', 'x\u{1d11f}']);
    for (const m of pair.middles) expect(m).toMatch(/^[\ud800-\udbff][\udc00-\udfff]$/);
  });
});

describe('parseBatchOutput', () => {
  const n = 'abc123';
  const m = sectionMarker(n, '');
  const status =
    '{"state":"running",\n"version":1,\n"supervisorPid":11,\n"pid":12,\n"pgid":12,\n"bootId":"b-1",\n"startedAtMs":1795852624635,\n"endedAtMs":null,\n"exitCode":null,\n"signal":null,\n"timedOut":false,\n"cancelled":false,\n"limitFired":null,\n"killedAfterGrace":false,\n"cpuSeconds":null,\n"cgroup":null,\n"oomKills":null,\n"pidsRefused":null,\n"kernelOom":[],\n"leftovers":0,\n"gpus":[]\n}';
  it('reads each job, its status and the boot id; a job it does not mention failed', () => {
    const text = [
      `${m} job 0 status 11 /w/jobs/a b`,
      status,
      `${m} job 1 launched 22 /w/jobs/b`,
      `${m} job 2 refused 0 /w/jobs/c`,
      'gpuq: node n: the GPU lock folder /x cannot be created',
      `${m} job 3 status 44 /w/jobs/d`,
      '{"state":"running", torn',
      `${m} job 9 status 1 /nope`,
      `${m} boot 59ca18e9-6a00`,
      '',
    ].join('\n');
    const r = parseBatchOutput(text, n, 5);
    expect(r.bootId).toBe('59ca18e9-6a00');
    expect(r.jobs[0]).toMatchObject({ kind: 'status', supervisorPid: 11, dir: '/w/jobs/a b' });
    expect(r.jobs[0]?.status?.pid).toBe(12);
    expect(r.jobs[1]).toMatchObject({ kind: 'launched', supervisorPid: 22, status: null });
    expect(r.jobs[2]).toMatchObject({
      kind: 'refused',
      said: 'gpuq: node n: the GPU lock folder /x cannot be created',
    });
    // a status that does not parse is a launch not yet confirmed
    expect(r.jobs[3]).toMatchObject({ kind: 'launched', status: null });
    expect(r.jobs[4]).toMatchObject({ kind: 'failed', dir: '' });
    // another nonce's markers are body text, not jobs
    expect(parseBatchOutput(text.replaceAll(n, 'zzz'), n, 2).jobs.map((j) => j.kind)).toEqual(['failed', 'failed']);
  });
});
