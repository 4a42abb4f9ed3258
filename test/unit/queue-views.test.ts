/**
 * How a queued job and a node's queue look: the list's state and reason, show's lines, the
 * watch header and plain printer, `nodes` with its leases and tickets (parsed from the node
 * status script's lines), and the expected wait that ranks GPU nodes at submit.
 */
import { describe, expect, it } from 'vitest';
import { renderNodes } from '../../src/cli/nodes.js';
import { renderJob, renderTable } from '../../src/cli/render.js';
import { makeStyle } from '../../src/cli/style.js';
import {
  estimateText,
  expectedWaitMs,
  gpuText,
  type NodeQueue,
  parseTicketName,
  pickByExpectedStart,
  queuedLabel,
  queueLine,
  type QueueView,
  ticketName,
} from '../../src/core/queue.js';
import { parseNodeQueue, parseNodeStatus } from '../../src/node/node-status.js';
import type { NodeReport } from '../../src/services/nodes.js';
import { headerRows } from '../../src/tui/lines.js';
import { plainPrinter } from '../../src/tui/plain.js';
import { NOW, runningJob } from '../helpers/tui-fixtures.js';

const style = makeStyle({ isTTY: false, env: {}, json: false });
const view: QueueView = {
  position: 3,
  reason: 'behind 2 jobs on gpu1 (1 of higher priority)',
  estimatedStart: new Date(NOW + 250_000).toISOString(),
};
const queued = runningJob({
  state: 'queued',
  gpus: [],
  startedAt: null,
  remote: { dir: '/w/jobs/abc12345', supervisorPid: 10, pid: null, bootId: 'b' },
  queue: view,
  priority: 2,
});
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64');

describe('a queued job in list, show and watch', () => {
  it('reads "queued #3" with its reason in the list', () => {
    expect(queuedLabel(queued)).toBe('queued #3');
    expect(queuedLabel({ state: 'queued', queue: null })).toBe('queued');
    const table = renderTable([queued], new Date(NOW), style).split('\n');
    expect(table[1]).toMatch(/queued #3 .* behind 2 jobs on gpu1 \(1 of higher priority\)$/);
  });

  it('shows position, priority, reason and estimated start', () => {
    const page = renderJob(queued, new Date(NOW), style);
    expect(page).toContain('Queue      position 3 on gpu1  priority 2');
    expect(page).toContain('Reason     behind 2 jobs on gpu1 (1 of higher priority)');
    expect(page).toMatch(/Starts {5}03:09 UTC, in 4m10s if every job ahead uses its whole time limit/);
  });

  it('says when the estimate is unknown or due', () => {
    expect(estimateText(null, NOW)).toMatch(/^unknown/);
    expect(estimateText(new Date(NOW - 5000).toISOString(), NOW)).toBe('any moment now');
    expect(estimateText(new Date(NOW + 3 * 3600_000).toISOString(), NOW)).toMatch(/in 3h00m/);
    expect(queueLine(view, 'gpu1', NOW)).toMatch(/^position 3 on gpu1 · behind 2 jobs .* · starts 03:09 UTC/);
  });

  it('shows the place and reason in the watch header and once per change in plain lines', () => {
    const rows = headerRows(queued, NOW, 200).map((r) => r.map((s) => s.text).join(''));
    expect(rows[0]).toContain('1 GPU, not leased yet');
    expect(rows[1]).toMatch(/^queued, position 3 on gpu1, for /);
    expect(rows[2]).toMatch(/^behind 2 jobs on gpu1 .* · starts 03:09 UTC/);
    const out: string[] = [];
    const p = plainPrinter({ out: (l) => out.push(l), warn: () => undefined }, { json: false, now: () => NOW });
    p({ type: 'job', job: queued });
    p({ type: 'job', job: { ...queued, queue: { ...view, estimatedStart: null } } });
    p({ type: 'job', job: { ...queued, queue: { ...view, position: 1, reason: 'waiting for 1 free GPU on gpu1' } } });
    p({ type: 'job', job: runningJob() });
    expect(out.map((l) => l.slice(21))).toEqual([
      'job abc12345 (train.py) on gpu1, 1 GPU, not leased yet: queued · timeout 10m00s · memory 200 MiB',
      'queued: position 3 on gpu1 · behind 2 jobs on gpu1 (1 of higher priority) · starts 03:09 UTC, in 4m10s if every job ahead uses its whole time limit',
      'queued: position 1 on gpu1 · waiting for 1 free GPU on gpu1 · starts 03:09 UTC, in 4m10s if every job ahead uses its whole time limit',
      'state: running',
    ]);
    expect(gpuText(runningJob())).toBe('GPU 0');
  });
});

describe('a node queue read from the lock folder', () => {
  const t1 = ticketName({ priority: 0, seq: 7, jobId: 'bbbb' }, 1, 600);
  const t2 = ticketName({ priority: 5, seq: 9, jobId: 'cccc' }, 2, 60);
  const stale = ticketName({ priority: 0, seq: 3, jobId: 'dddd' }, 1, 60);
  const lines = [
    'lockdir yes',
    'lk lock 0 101 1',
    'lk hold 0 102 1',
    'lk lock 1 103 0',
    'lk hold 1 104 1',
    `tk 1 ${t1}`,
    `tk 1 ${t2}`,
    `tk 0 ${stale}`,
    'tk 1 q-not-a-ticket',
    `holder 0 ${b64({ job: 'aaaa', submitter: 'ann@laptop', supervisorPid: 5, sinceMs: NOW - 60_000, timeoutS: 600, gpus: [0] })}`,
    `holder 1 ${b64({ job: 'eeee', submitter: 7, sinceMs: 'soon' })}`,
  ];

  it('keeps live tickets in queue order and says who holds each GPU (held, orphan, free)', () => {
    const nq = parseNodeQueue(lines, [0, 1, 2]) as NodeQueue;
    expect(nq.tickets.map((t) => t.jobId)).toEqual(['cccc', 'bbbb']);
    expect(nq.tickets[0]).toEqual({ jobId: 'cccc', priority: 5, need: 2, timeoutS: 60 });
    expect(nq.leases.map((l) => l.state)).toEqual(['held', 'orphan', 'free']);
    expect(nq.leases[0]).toMatchObject({ job: 'aaaa', submitter: 'ann@laptop', sinceMs: NOW - 60_000, timeoutS: 600 });
    // what a holder file says is type-checked: wrong types are absent
    expect(nq.leases[1]).toMatchObject({ job: 'eeee', submitter: null, sinceMs: null });
    expect(parseNodeQueue(['lockdir no'], [0])?.leases).toEqual([
      { index: 0, state: 'free', job: null, submitter: null, supervisorPid: null, sinceMs: null, timeoutS: null },
    ]);
    expect(parseNodeQueue([], [0])).toBeNull();
    expect(parseTicketName('q-0990-000000000001-abc-1-60')).toEqual({
      jobId: 'abc',
      priority: 10,
      need: 1,
      timeoutS: 60,
    });
    expect(parseTicketName('q-0990-1-abc-1-60')).toBeNull();
  });

  it('prints the queue length, each GPU lease holder and the waiting tickets in `nodes`', () => {
    const status = parseNodeStatus(['host n1', 'jobs 1', ...lines].join('\n'), [0, 1]);
    const report: NodeReport = {
      name: 'gpu1',
      transport: 'ssh',
      host: 'n1',
      reachable: true,
      error: null,
      hint: null,
      connectMs: 3,
      latencyMs: 1,
      configuredGpus: [0, 1],
      ledgerJobs: 0,
      status,
    };
    const out = renderNodes([report], style, new Date(NOW)).split('\n');
    expect(out[0]).toMatch(/JOBS {2}QUEUE {2}GPUS/);
    expect(out[1]).toMatch(/ 1 {5}2 {6}2 \(config\)$/);
    expect(out).toContain('  GPU 0  lease held by job aaaa (ann@laptop, since 03:04:35 UTC, 1m00s ago)');
    expect(out).toContain('  GPU 1  lease held by a process of job eeee whose supervisor is gone');
    expect(out).toContain('  queue: cccc (2 GPUs, priority 5), bbbb (1 GPU)');
  });

  it('ranks nodes by when a job would start there', () => {
    const now = NOW;
    const held = (sinceMs: number, timeoutS: number) => ({
      index: 0,
      state: 'held' as const,
      job: 'x',
      submitter: null,
      supervisorPid: 1,
      sinceMs,
      timeoutS,
    });
    const free = { ...held(0, 0), state: 'free' as const };
    const busySoon: NodeQueue = { tickets: [], leases: [held(now - 50_000, 60)] };
    const busyLong: NodeQueue = {
      tickets: [{ jobId: 'q1', priority: 0, need: 1, timeoutS: 600 }],
      leases: [held(now - 50_000, 60)],
    };
    expect(expectedWaitMs({ tickets: [], leases: [free] }, 1, 0, now)).toBe(0);
    expect(expectedWaitMs(busySoon, 1, 0, now)).toBe(10_000);
    expect(expectedWaitMs(busyLong, 1, 0, now)).toBe(610_000);
    // a higher priority goes ahead of the waiting ticket
    expect(expectedWaitMs(busyLong, 1, 1, now)).toBe(10_000);
    expect(expectedWaitMs({ tickets: [], leases: [{ ...free, state: 'orphan' }] }, 1, 0, now)).toBeNull();
    expect(expectedWaitMs(busySoon, 2, 0, now)).toBeNull();
    expect(expectedWaitMs(null, 1, 0, now)).toBeNull();
    const nodes = [
      { name: 'long', waitMs: expectedWaitMs(busyLong, 1, 0, now) },
      { name: 'soon', waitMs: expectedWaitMs(busySoon, 1, 0, now) },
    ];
    expect(pickByExpectedStart(nodes).map((n) => n.name)).toEqual(['soon', 'long']);
  });
});
