import { describe, expect, it } from 'vitest';
import { launchStatusOf } from '../../src/core/job-files.js';
import { jobShapeProblem } from '../../src/core/job-shape.js';

describe('launchStatusOf: the status.json a launch read, forged or not', () => {
  it('keeps only well-typed fields of a forged file, so the ledger never gets an ill-typed job', () => {
    const s = launchStatusOf('{"state":"running","supervisorPid":1,"pid":"x","gpus":[0,"1",2.5]}');
    expect(s).not.toBeNull();
    expect(s?.state).toBe('running');
    expect(s?.supervisorPid).toBe(1);
    expect(s?.pid).toBeNull();
    expect(s?.gpus).toEqual([0]);
    expect(s?.exitCode).toBeNull();
  });
  it('takes a state it does not know as running, and refuses what is not JSON', () => {
    expect(launchStatusOf('{"state":"done"}')?.state).toBe('running');
    expect(launchStatusOf('[1,2]')?.pid).toBeNull();
    expect(launchStatusOf('not json')).toBeNull();
  });
  it('a job built from a forged launch status passes the ledger check', () => {
    const s = launchStatusOf('{"state":"running","supervisorPid":1}');
    const job = {
      id: 'a',
      name: 'p.py',
      file: '/p.py',
      node: 'local',
      gpus: s?.gpus ?? [],
      competition: null,
      state: 'running',
      isolation: 'ulimit',
      image: null,
      limits: {
        timeoutS: 1,
        graceS: 1,
        memoryBytes: null,
        pids: null,
        files: null,
        fileSizeBytes: null,
        cpuTimeS: null,
        gpus: 0,
      },
      env: {},
      args: [],
      createdAt: 'x',
      startedAt: null,
      endedAt: null,
      history: [],
      remote: { dir: '/d', supervisorPid: s?.supervisorPid ?? null, pid: s?.pid ?? null, bootId: s?.bootId ?? null },
      verdict: null,
    };
    expect(jobShapeProblem(job)).toBeNull();
  });
});
