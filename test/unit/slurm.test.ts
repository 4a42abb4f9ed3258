/**
 * core/slurm without a process: the sbatch line gpuq builds, what sbatch, squeue, sacct and sinfo
 * print (recorded from Debian's slurm-wlm 22.05, and hostile variants), and every verdict Slurm
 * decides where the supervisor could not write.
 */
import { describe, expect, it } from 'vitest';
import {
  gresGpus,
  parseSacct,
  parseSbatchId,
  parseSinfo,
  parseSlurmState,
  parseSqueue,
  pendingPosition,
  SLURM_STATES,
  type SlurmJobView,
  sbatchArgProblem,
  sbatchArgs,
  slurmMessage,
  slurmPhase,
  slurmQueueView,
  slurmTimeMinutes,
  slurmTimeToIso,
  slurmUnreachable,
  slurmVerdict,
  summarizePartition,
  withSlurmRecord,
} from '../../src/core/slurm.js';
import type { Verdict } from '../../src/core/types.js';

const view = (over: Partial<SlurmJobView> = {}): SlurmJobView => ({
  row: null,
  acct: null,
  position: null,
  zone: '+0000',
  ...over,
});
const row = (state: string, reason = 'None') =>
  parseSqueue(`42|${state}|gpu|100|2026-11-28T07:36:30|N/A|${reason}`)[0] ?? null;
const acct = (line: string) => parseSacct(line, '42');
const judge = (v: SlurmJobView, o: { cancel?: boolean; started?: boolean } = {}) =>
  slurmVerdict({
    slurmId: '42',
    view: v,
    cancelRequested: o.cancel ?? false,
    supervisorStarted: o.started ?? true,
    timeoutS: 60,
  });

describe('sbatch arguments', () => {
  it('asks for the GPUs, memory over gpuq limit, CPUs and a time above timeout plus grace', () => {
    const args = sbatchArgs({
      jobId: 'abc',
      dir: '/shared/jobs/abc',
      partition: 'gpu',
      account: 'lab',
      qos: 'normal',
      gpus: 2,
      memoryBytes: 1024 ** 3,
      cpusPerTask: 4,
      timeoutS: 600,
      graceS: 10,
      extra: ['--constraint=a100'],
    });
    expect(args).toEqual([
      '--parsable',
      '--job-name=gpuq-abc',
      '--output=slurm.out',
      '--no-requeue',
      '--partition=gpu',
      '--account=lab',
      '--qos=normal',
      '--gres=gpu:2',
      '--mem=1280M',
      '--cpus-per-task=4',
      '--time=12',
      '--constraint=a100',
      'slurm.sh',
    ]);
  });
  it('leaves out what is not set: no GPUs, no memory limit, no partition', () => {
    const args = sbatchArgs({
      jobId: 'x',
      dir: '/d',
      partition: null,
      account: null,
      qos: null,
      gpus: 0,
      memoryBytes: null,
      cpusPerTask: 0,
      timeoutS: null,
      graceS: 10,
      extra: [],
    });
    expect(args).toEqual([
      '--parsable',
      '--job-name=gpuq-x',
      '--output=slurm.out',
      '--no-requeue',
      '--cpus-per-task=1',
      'slurm.sh',
    ]);
  });
  it('rounds the time limit up to whole minutes, a minute or a tenth of the timeout past gpuq own', () => {
    expect(slurmTimeMinutes(3, 1)).toBe(2); // 3 + 1 + 60 s
    expect(slurmTimeMinutes(60, 10)).toBe(3);
    expect(slurmTimeMinutes(3600, 10)).toBe(67); // 3600 + 10 + 360 s
    expect(slurmTimeMinutes(null, 10)).toBeNull();
    expect(slurmTimeMinutes(Number.POSITIVE_INFINITY, 10)).toBeNull();
  });
  it('allows only listed extra options, without line breaks', () => {
    expect(sbatchArgProblem('--constraint=a100')).toBeNull();
    expect(sbatchArgProblem('--exclusive')).toBeNull();
    expect(sbatchArgProblem('--time=5')).toMatch(/not allowed/);
    expect(sbatchArgProblem('--wrap=rm -rf /')).toMatch(/not allowed/);
    expect(sbatchArgProblem('--output=/etc/x')).toMatch(/not allowed/);
    expect(sbatchArgProblem('-p gpu')).toMatch(/form/);
    expect(sbatchArgProblem('--comment=a\nb')).toMatch(/line break/);
  });
  it('reads the id sbatch --parsable prints, with or without a cluster', () => {
    expect(parseSbatchId('123\n')).toBe('123');
    expect(parseSbatchId('123;cluster-a')).toBe('123');
    expect(parseSbatchId('Submitted batch job 123')).toBeNull();
    expect(parseSbatchId('')).toBeNull();
    expect(parseSbatchId('12a')).toBeNull();
  });
});

describe('states and squeue', () => {
  it('puts every Slurm state in one phase', () => {
    const phases = new Map(SLURM_STATES.map((s) => [s, slurmPhase(s)]));
    expect(phases.get('PENDING')).toBe('waiting');
    expect(phases.get('REQUEUED')).toBe('waiting');
    expect(phases.get('RUNNING')).toBe('allocated');
    expect(phases.get('COMPLETING')).toBe('allocated');
    for (const s of ['COMPLETED', 'CANCELLED', 'FAILED', 'TIMEOUT', 'NODE_FAIL', 'PREEMPTED', 'OUT_OF_MEMORY'] as const)
      expect(phases.get(s)).toBe('ended');
  });
  it('reads state words as sacct and squeue print them', () => {
    expect(parseSlurmState('CANCELLED by 1000')).toEqual({ state: 'CANCELLED', byUid: 1000 });
    expect(parseSlurmState('CANCELLED+')).toEqual({ state: 'CANCELLED', byUid: null });
    expect(parseSlurmState('RUNNING')).toEqual({ state: 'RUNNING', byUid: null });
    expect(parseSlurmState('running')).toBeNull();
    expect(parseSlurmState('EXPLODED')).toBeNull();
  });
  it('parses rows, keeps a reason with "|" in it whole, and skips noise', () => {
    const rows = parseSqueue(
      [
        '11|PENDING|gpu|4294901758|2026-11-28T07:44:36|2026-11-28T08:00:00|Resources',
        'squeue: error: something',
        '12|PENDING|gpu|10|2026-11-28T07:44:37|N/A|ReqNodeNotAvail, a|b',
        'x|RUNNING|gpu|1|N/A|N/A|None',
        '13|RUNNING|gpu|1|N/A|N/A|None',
      ].join('\n'),
    );
    expect(rows.map((r) => r.id)).toEqual(['11', '12', '13']);
    expect(rows[0]).toMatchObject({ reason: 'Resources', startTime: '2026-11-28T08:00:00', priority: 4294901758 });
    expect(rows[1]?.reason).toBe('ReqNodeNotAvail, a|b');
    expect(rows[1]?.startTime).toBeNull();
    expect(rows[2]?.reason).toBeNull();
  });
  it('makes a reason printable and bounded', () => {
    const [r] = parseSqueue(`1|PENDING|gpu|1|N/A|N/A|\x1b[31m${'x'.repeat(500)}`);
    expect(r?.reason).not.toMatch(/\x1b/);
    expect(r?.reason?.length).toBeLessThanOrEqual(200);
  });
  it('orders the partition pending jobs by priority, then submit time, then id', () => {
    const pending = parseSqueue(
      [
        '5|PENDING|gpu|100|2026-11-28T07:00:02|N/A|Priority',
        '6|PENDING|gpu|200|2026-11-28T07:00:03|N/A|Resources',
        '7|PENDING|gpu|100|2026-11-28T07:00:01|N/A|Priority',
        '8|PENDING|other|999|2026-11-28T07:00:00|N/A|Priority',
        '9|PENDING|gpu|100|2026-11-28T07:00:02|N/A|Priority',
      ].join('\n'),
    );
    expect(pendingPosition('6', pending)).toBe(1);
    expect(pendingPosition('7', pending)).toBe(2);
    expect(pendingPosition('5', pending)).toBe(3);
    expect(pendingPosition('9', pending)).toBe(4);
    expect(pendingPosition('8', pending)).toBe(1);
    expect(pendingPosition('99', pending)).toBeNull();
  });
  it("turns Slurm's local times into UTC with the login node's offset", () => {
    expect(slurmTimeToIso('2026-11-28T08:00:00', '+0100')).toBe('2026-11-28T07:00:00.000Z');
    expect(slurmTimeToIso('2026-11-28T08:00:00', '-0530')).toBe('2026-11-28T13:30:00.000Z');
    expect(slurmTimeToIso('2026-11-28T08:00:00', 'UTC')).toBeNull();
    expect(slurmTimeToIso(null, '+0000')).toBeNull();
  });
  it('gives a pending job the queue view node queues give', () => {
    const r = parseSqueue('42|PENDING|gpu|1|2026-11-28T07:00:00|2026-11-28T09:00:00|Resources')[0] ?? null;
    expect(slurmQueueView(view({ row: r, position: 3, zone: '+0200' }))).toEqual({
      position: 3,
      reason: 'Slurm: Resources',
      estimatedStart: '2026-11-28T07:00:00.000Z',
    });
    expect(slurmQueueView(view({ row: row('PENDING') })).reason).toBe('Slurm: waiting to be scheduled');
  });
});

describe('sacct and sinfo', () => {
  it('reads the allocation line of sacct -P', () => {
    expect(acct('42|CANCELLED by 0|0:15|None\n42.batch|CANCELLED|0:15|')).toEqual({
      id: '42',
      state: 'CANCELLED',
      byUid: 0,
      exitCode: 0,
      signal: 15,
      reason: null,
    });
    expect(acct('42|OUT_OF_MEMORY|0:125|OutOfMemory')).toMatchObject({ state: 'OUT_OF_MEMORY', signal: 125 });
    expect(acct('42|COMPLETED|3:0|None')).toMatchObject({ exitCode: 3, signal: null });
    expect(acct('Slurm accounting storage is disabled')).toBeNull();
    expect(acct('420|FAILED|1:0|None')).toBeNull();
  });
  it('counts GPUs in GRES texts', () => {
    expect(gresGpus('gpu:2')).toBe(2);
    expect(gresGpus('gpu:a100:4(S:0-1)')).toBe(4);
    expect(gresGpus('gpu:1(IDX:0),gpu:v100:1(IDX:2)')).toBe(2);
    expect(gresGpus('gpu:0')).toBe(0);
    expect(gresGpus('gpu:2(IDX:0-1),mps:100')).toBe(2);
    expect(gresGpus('(null)')).toBe(0);
  });
  it('summarizes a partition: nodes by state, GPUs free on usable nodes, jobs', () => {
    const nodes = parseSinfo(
      [
        'n1|idle|gpu:2|gpu:0|0/8/0/8|',
        'n2|mixed|gpu:4|gpu:3(IDX:0-2)|4/4/0/8|',
        'n3|down*|gpu:4|gpu:0|0/0/8/8|',
        'n4|drained|gpu:4|gpu:0|0/0/8/8|',
        'n5|allocated|gpu:2|gpu:2(IDX:0-1)|8/0/0/8|',
        'garbage',
      ].join('\n'),
    );
    expect(nodes).toHaveLength(5);
    const jobs = parseSqueue(['1|RUNNING|gpu|1|N/A|N/A|None', '2|PENDING|gpu|1|N/A|N/A|Resources'].join('\n'));
    expect(summarizePartition('gpu', nodes, jobs)).toEqual({
      partition: 'gpu',
      nodes: { idle: 1, mixed: 1, allocated: 1, down: 2, other: 0 },
      gpus: 16,
      gpusFree: 3,
      pendingJobs: 1,
      runningJobs: 1,
    });
  });
  it("quotes Slurm's most telling line and tells an unreachable controller from a refusal", () => {
    const refused = slurmMessage(
      'sbatch: error: invalid partition specified: nope\nsbatch: error: Batch job submission failed: Invalid partition name specified\n',
    );
    expect(refused).toBe('sbatch: error: Batch job submission failed: Invalid partition name specified');
    expect(slurmUnreachable(refused)).toBe(false);
    const down = slurmMessage(
      'sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)',
    );
    expect(slurmUnreachable(down)).toBe(true);
    expect(slurmUnreachable('sbatch: fatal: Could not establish a configuration source')).toBe(true);
    expect(slurmMessage('')).toBe('no message');
  });
});

describe("Slurm's verdicts where the supervisor could not write", () => {
  it('waits while Slurm has not ended the job', () => {
    expect(judge(view({ row: row('PENDING', 'Resources') }))).toBeNull();
    expect(judge(view({ row: row('RUNNING') }))).toBeNull();
    expect(judge(view({ row: row('COMPLETING') }))).toBeNull();
  });
  it('calls a job gone from squeue and sacct lost', () => {
    const v = judge(view());
    expect(v).toMatchObject({ class: 'lost', cause: 'slurm_vanished' });
    expect(v?.evidence[0]).toMatch(/gone from squeue and sacct/);
  });
  it('calls NODE_FAIL and BOOT_FAIL lost, PREEMPTED lost and says so', () => {
    expect(judge(view({ row: row('NODE_FAIL') }))).toMatchObject({ class: 'lost', cause: 'node_fail' });
    expect(judge(view({ acct: acct('42|BOOT_FAIL|0:0|None') }))).toMatchObject({ class: 'lost', cause: 'node_fail' });
    const p = judge(view({ acct: acct('42|PREEMPTED|0:15|None') }));
    expect(p).toMatchObject({ class: 'lost', cause: 'preempted', signal: 'SIGTERM' });
    expect(p?.summary).toMatch(/Preempted/);
  });
  it("calls Slurm's time limit a timeout and its memory kill oom", () => {
    expect(judge(view({ row: row('TIMEOUT') }))).toMatchObject({
      class: 'timeout',
      cause: 'slurm_time_limit',
      timedOut: true,
    });
    expect(judge(view({ acct: acct('42|DEADLINE|0:0|None') }))).toMatchObject({ class: 'timeout' });
    expect(judge(view({ acct: acct('42|OUT_OF_MEMORY|0:125|None') }))).toMatchObject({
      class: 'oom',
      cause: 'slurm_oom',
    });
  });
  it("names gpuq's cancel cancelled and anyone else's scancel signaled, from outside", () => {
    expect(judge(view({ row: row('CANCELLED') }), { cancel: true, started: false })).toMatchObject({
      class: 'cancelled',
      summary: 'Cancelled while queued in Slurm; the program never ran.',
    });
    expect(judge(view({ row: row('CANCELLED') }), { cancel: true })).toMatchObject({
      class: 'cancelled',
      summary: 'Cancelled.',
    });
    const outside = judge(view({ acct: acct('42|CANCELLED by 0|0:15|None') }), { started: false });
    expect(outside).toMatchObject({ class: 'signaled', cause: 'slurm_cancelled' });
    expect(outside?.summary).toBe('Cancelled in Slurm from outside gpuq (scancel by uid 0) before it started.');
  });
  it('calls a job Slurm ended without the supervisor recording it lost', () => {
    expect(judge(view({ row: row('COMPLETED') }))).toMatchObject({ class: 'lost', cause: 'supervisor_vanished' });
    const f = judge(view({ acct: acct('42|FAILED|1:0|None') }), { started: false });
    expect(f).toMatchObject({ class: 'lost', exitCode: 1 });
    expect(f?.summary).toMatch(/never started/);
  });
});

describe("the supervisor's verdict with Slurm's record", () => {
  const sigterm: Verdict = {
    class: 'signaled',
    cause: 'sigterm',
    exitCode: 143,
    signal: 'SIGTERM',
    timedOut: false,
    summary: 'Stopped by SIGTERM from outside gpuq.',
    evidence: ['exit code 143'],
    hints: [],
  };
  const input = (v: SlurmJobView, cancel = false) => ({
    slurmId: '42',
    view: v,
    cancelRequested: cancel,
    supervisorStarted: true,
    timeoutS: 60,
  });
  it('names a SIGTERM Slurm records as CANCELLED a cancel from outside gpuq, keeping the exit', () => {
    const v = withSlurmRecord(sigterm, input(view({ row: row('CANCELLED') })));
    expect(v).toMatchObject({ class: 'signaled', cause: 'slurm_cancelled', exitCode: 143, signal: 'SIGTERM' });
    expect(v.evidence).toEqual(['exit code 143', 'Slurm job 42: CANCELLED']);
  });
  it("leaves gpuq's own cancel and a success as they are, adding the evidence", () => {
    const cancelled: Verdict = { ...sigterm, class: 'cancelled', cause: null, summary: 'Cancelled.' };
    expect(withSlurmRecord(cancelled, input(view({ row: row('CANCELLED') }), true))).toMatchObject({
      class: 'cancelled',
      summary: 'Cancelled.',
    });
    const ok: Verdict = {
      ...sigterm,
      class: 'succeeded',
      cause: null,
      exitCode: 0,
      signal: null,
      summary: 'Exited 0.',
    };
    expect(withSlurmRecord(ok, input(view({ row: row('COMPLETED') }))).evidence.at(-1)).toBe('Slurm job 42: COMPLETED');
  });
  it('says so when Slurm preempted the job', () => {
    const v = withSlurmRecord(sigterm, input(view({ acct: acct('42|PREEMPTED|0:15|None') })));
    expect(v.cause).toBe('preempted');
    expect(v.summary).toMatch(/^Preempted by Slurm/);
  });
});
