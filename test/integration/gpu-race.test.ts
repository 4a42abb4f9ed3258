/**
 * Concurrent submits must not share a GPU: real CLI processes, one GPUQ_HOME, a local node
 * with as many GPUs as submits, long-running programs. Each submit chooses its GPU and records
 * it in one locked ledger update, so no two running jobs ever hold the same index.
 */
import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { gpuq, gpuqJson, type Home, makeHome, startGpuq, writeProgram } from '../helpers/cli.js';

const GPUS = 6;
// One round of six racing submits (three cost 41 s of a 2-core machine, two 45 s with the queue;
// the race it caught put all six on GPU 0 in a single round).
const ROUNDS = 1;

const homes: Home[] = [];
/** Jobs of the running round: cancelled even when an assertion fails, so no program outlives the test. */
const started: string[] = [];
afterEach(async () => {
  const h = homes[0];
  if (h && started.length > 0) await gpuq(h, ['cancel', ...started.splice(0)]);
  await Promise.all(homes.splice(0).map((x) => x.cleanup()));
});

describe('concurrent submit --gpus 1', () => {
  it(`never gives two running jobs the same GPU (${ROUNDS} rounds of ${GPUS} submits on ${GPUS} GPUs)`, async () => {
    const h = await makeHome({
      // A lock folder of its own: the default one is shared by every test run on this machine.
      nodes: {
        local: {
          transport: 'local',
          gpus: Array.from({ length: GPUS }, (_, i) => i),
          lockDir: `${tmpdir()}/gpuq-race-${process.pid}`,
        },
      },
      defaults: { node: 'local' },
    });
    homes.push(h);
    const prog = await writeProgram('sleepy.py', 'import time\ntime.sleep(600)\n');
    for (let round = 0; round < ROUNDS; round++) {
      const runs = Array.from(
        { length: GPUS },
        () => startGpuq(h, ['submit', prog, '--gpus', '1', '--timeout', '10m', '--grace', '1s', '-q']).done,
      );
      const results = await Promise.all(runs);
      for (const r of results) expect(r.stderr).toBe('');
      for (const r of results) expect(r.code).toBe(0);
      const ids = results.map((r) => r.stdout.trim());
      started.push(...ids);
      const jobs = await gpuqJson<Job[]>(h, ['list', '--all']);
      const mine = jobs.filter((j) => ids.includes(j.id));
      expect(mine).toHaveLength(GPUS);
      for (const j of mine) expect(j.state).toBe('running');
      const held = mine.flatMap((j) => j.gpus).sort((a, b) => a - b);
      // Each GPU exactly once: a race hands the same index to two jobs.
      expect(held).toEqual(Array.from({ length: GPUS }, (_, i) => i));
      const c = await gpuq(h, ['cancel', ...started.splice(0)]);
      expect(c.code).toBe(0);
    }
  }, 240_000);
});
