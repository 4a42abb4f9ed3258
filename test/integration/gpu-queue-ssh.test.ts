/**
 * The GPU queue over real SSH: two GPUQ_HOMEs (two submitters with ledgers of their own, as two
 * CI runners) send 1-GPU jobs to the same 1-GPU node through a private sshd. The node's lock
 * folder alone keeps them apart: judged from the programs' own start and end times. `gpuq
 * nodes` over the same link shows the lease's holder.
 */
import { randomUUID } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import type { NodeReport } from '../../src/services/nodes.js';
import { gpuq, gpuqJson, type Home, makeHome, writeProgram } from '../helpers/cli.js';
import { type Sshd, startSshd } from '../helpers/sshd.js';

let node: Sshd;
const homes: Home[] = [];
const lockDir = `/tmp/gpuq-locks-ssh-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  node = await startSshd({ alias: 'gpu-node' });
});
afterAll(async () => {
  await Promise.all(homes.map((h) => h.cleanup()));
  await node?.cleanup();
  await rm(lockDir, { recursive: true, force: true });
});

/** A submitter: its own home and ledger, its own workdir on the node, the node's one lock folder. */
async function submitter(tag: string): Promise<Home> {
  const entry = node.configEntry({ gpus: [0], lockDir, workdir: `~/gpuq-${node.port}-${tag}` });
  const h = await makeHome({ nodes: { gpu: entry } }, { GPUQ_SSH_CONFIG: node.sshConfigPath }, { autoCleanup: false });
  homes.push(h);
  await writeFile(join(h.dir, 'known_hosts'), `${node.knownHostsLine('right')}\n`);
  return h;
}

describe('the GPU queue over SSH', () => {
  it('never runs two 1-GPU jobs at once on a 1-GPU node, whichever of two submitters sent them', async () => {
    const [a, b] = await Promise.all([submitter('a'), submitter('b')]);
    const prog = await writeProgram(
      'span.py',
      'import time\nprint("start", time.time(), flush=True)\ntime.sleep(1.5)\nprint("end", time.time(), flush=True)\n',
    );
    const submit = async (h: Home) => {
      const r = await gpuq(h, ['submit', prog, '--gpus', '1', '--timeout', '1m', '-q']);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.trim();
    };
    const ids = await Promise.all([submit(a), submit(b), submit(a), submit(b)]);
    // Four jobs of 1.5 s each, one at a time: one of them holds the lease now.
    const [report] = await gpuqJson<NodeReport[]>(a, ['nodes']);
    const lease = report?.status?.queue?.leases[0];
    expect(lease?.state).toBe('held');
    expect(ids).toContain(lease?.job);
    // the submitter is the client's user@host, not the node account
    expect(lease?.submitter).toMatch(new RegExp(`^${userInfo().username}@`));
    const [wa, wb] = await Promise.all([
      gpuq(a, ['wait', ids[0] as string, ids[2] as string]),
      gpuq(b, ['wait', ids[1] as string, ids[3] as string]),
    ]);
    expect(wa.code, wa.stderr).toBe(0);
    expect(wb.code, wb.stderr).toBe(0);
    const jobs = (await Promise.all([gpuqJson<Job[]>(a, ['list']), gpuqJson<Job[]>(b, ['list'])])).flat();
    const spans = await Promise.all(
      ids.map(async (id) => {
        const job = jobs.find((j) => j.id === id) as Job;
        expect(job.gpus).toEqual([0]);
        const text = await readFile(join(job.remote?.dir as string, 'stdout.log'), 'utf8');
        return {
          start: Number(/^start (\S+)$/m.exec(text)?.[1]),
          end: Number(/^end (\S+)$/m.exec(text)?.[1]),
        };
      }),
    );
    spans.sort((x, y) => x.start - y.start);
    for (const sp of spans) expect(sp.end).toBeGreaterThan(sp.start);
    for (let i = 1; i < spans.length; i++)
      expect(spans[i]?.start as number).toBeGreaterThanOrEqual(spans[i - 1]?.end as number);
  });
});
