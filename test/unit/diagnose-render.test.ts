/**
 * The pure parts of `gpuq diagnose`: the stderr tail it quotes, the node warnings, the page.
 */
import { describe, expect, it } from 'vitest';
import { renderDiagnosis } from '../../src/cli/diagnose.js';
import { makeStyle } from '../../src/cli/style.js';
import type { NodeStatus } from '../../src/node/node-status.js';
import { lastStderrLines, nodeFactHints, type Diagnosis } from '../../src/services/diagnose.js';
import { GiB, LIMITS } from '../helpers/classify-fixtures.js';

const plain = makeStyle({ isTTY: false, env: {}, json: false });

const node = (over: Partial<NodeStatus> = {}): NodeStatus => ({
  hostname: 'gpu1',
  load: [0.5, 0.4, 0.3],
  cpus: 16,
  bootId: 'b',
  runningJobs: 1,
  memory: { totalBytes: 128 * GiB, availableBytes: 100 * GiB },
  diskPath: '/home/u/.gpuq/jobs/abc',
  disk: { totalBytes: 500 * GiB, usedBytes: 100 * GiB, freeBytes: 400 * GiB },
  inodes: { total: 1_000_000, used: 1000, free: 999_000 },
  gpus: null,
  ...over,
});

describe('lastStderrLines', () => {
  it('keeps the last 20 lines, without trailing blanks or progress-bar redraws', () => {
    const text = `${Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n')}\n 10%|#\r100%|##########|\n\n\n`;
    const lines = lastStderrLines(text);
    expect(lines).toHaveLength(20);
    expect(lines.at(-1)).toBe('100%|##########|');
    expect(lines[0]).toBe('line 11');
  });
  it('is empty for an empty log', () => expect(lastStderrLines('')).toEqual([]));
});

describe('nodeFactHints', () => {
  it('says nothing about a healthy node', () => expect(nodeFactHints(node(), 'gpu1')).toEqual([]));
  it('warns about a nearly full disk, inodes, memory and an overloaded node', () => {
    const hints = nodeFactHints(
      node({
        disk: { totalBytes: 500 * GiB, usedBytes: 499.5 * GiB, freeBytes: 0.5 * GiB },
        inodes: { total: 1_000_000, used: 990_000, free: 10_000 },
        memory: { totalBytes: 128 * GiB, availableBytes: 2 * GiB },
        load: [40, 30, 20],
      }),
      'gpu1',
    ).join('\n');
    expect(hints).toMatch(/only 512 MiB of disk free at \/home\/u\/\.gpuq\/jobs\/abc/);
    expect(hints).toMatch(/only 10000 inodes free/);
    expect(hints).toMatch(/only 2 GiB of memory available/);
    expect(hints).toMatch(/overloaded \(load 40\.00 on 16 cores\)/);
  });
});

describe('renderDiagnosis', () => {
  const d: Diagnosis = {
    id: 'abc12345',
    name: 'train.py',
    node: 'gpu1',
    state: 'done',
    verdict: {
      class: 'oom',
      cause: 'cgroup',
      exitCode: 137,
      signal: 'SIGKILL',
      timedOut: false,
      summary: 'Killed for memory at the memory limit of 2 GiB.',
      evidence: [
        "the job's memory cgroup counted 1 OOM kill at its 2 GiB limit",
        'RSS peaked at 1.98 GiB of the 2 GiB limit (99%)',
      ],
      hints: ['raise the limit if the node has the RAM: gpuq submit --memory 4g …'],
    },
    summary: 'Killed for memory at the memory limit of 2 GiB.',
    evidence: [
      "the job's memory cgroup counted 1 OOM kill at its 2 GiB limit",
      'RSS peaked at 1.98 GiB of the 2 GiB limit (99%)',
    ],
    limits: { ...LIMITS, memoryBytes: 2 * GiB },
    peaks: [
      {
        key: 'memory',
        value: 2_125_824_819,
        limit: 2 * GiB,
        ratio: 0.99,
        text: 'RSS peaked at 1.98 GiB of the 2 GiB limit (99%)',
        source: 'sampler',
      },
    ],
    durationMs: 60_000,
    current: null,
    stderrTail: ['loading data', 'epoch 1'],
    folder: { dir: '/home/u/.gpuq/jobs/abc12345', exists: true },
    nodeFacts: { reachable: true, error: null, status: node() },
    hints: ['raise the limit if the node has the RAM: gpuq submit --memory 4g …'],
    notes: [],
    grading: null,
  };

  it('prints verdict, evidence, peaks, stderr, node and hints, each peak once', () => {
    const page = renderDiagnosis(d, plain);
    expect(page).toMatch(
      new RegExp(
        String.raw`^abc12345 {2}train\.py {2}on gpu1: oom \(cgroup\), exit 137 · SIGKILL\n` +
          String.raw` {2}Killed for memory at the memory limit of 2 GiB\.\n`,
      ),
    );
    expect(page).toMatch(/Evidence\n {2}- the job's memory cgroup counted 1 OOM kill/);
    expect(page.match(/RSS peaked at 1\.98 GiB of the 2 GiB limit/g)).toHaveLength(1);
    expect(page).toMatch(
      /Last 2 lines of stderr \(\/home\/u\/\.gpuq\/jobs\/abc12345\/stderr\.log\)\n {2}\| loading data\n {2}\| epoch 1/,
    );
    expect(page).toMatch(/Node gpu1\n {2}disk {5}400 GiB free of 500 GiB \(80%\) at \/home\/u\/\.gpuq\/jobs\/abc/);
    expect(page).toMatch(/load {5}0\.50 0\.40 0\.30 on 16 cores/);
    expect(page).toMatch(/Hints\n {2}- raise the limit/);
    expect(page).not.toMatch(/\x1b\[/);
  });

  it('leaves out what it does not have and says why', () => {
    const page = renderDiagnosis(
      {
        ...d,
        peaks: [],
        stderrTail: [],
        folder: null,
        nodeFacts: { reachable: false, error: 'connection refused', status: null },
        notes: ['node gpu1 could not be reached (connection refused)'],
      },
      plain,
    );
    expect(page).not.toMatch(/Peaks against limits|Last \d+ line|Node gpu1\n/);
    expect(page).toMatch(/Notes\n {2}node gpu1 could not be reached/);
  });
});
