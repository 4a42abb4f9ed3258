/**
 * The local node finds its GPUs with nvidia-smi (a stand-in on PATH) when a command needs them:
 * submit --gpus and nodes; list never asks; a `gpus` in the config wins; nvidia-smi missing,
 * failing or hung means no GPU, and a GPU job is refused (exit 2) saying so and what to do.
 * The homes run at once (concurrent), each cleaning up after itself.
 */
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gpuq, type Home, makeHome } from '../helpers/cli.js';
import { fakeNvidiaSmiGpus } from '../helpers/nvidia-smi.js';

/** PATH without any folder that holds a real nvidia-smi (so "no GPU" holds on a GPU machine too). */
const PATH_WITHOUT_SMI = (process.env.PATH ?? '')
  .split(':')
  .filter((d) => d !== '' && !existsSync(join(d, 'nvidia-smi')))
  .join(':');

/** The calls the local node's GPU listing made of the stand-in (not the sampler's or the queue's). */
function listings(bin: string): number {
  const f = join(bin, 'calls');
  if (!existsSync(f)) return 0;
  return readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l === '--query-gpu=index --format=csv,noheader,nounits').length;
}

async function withHome(config: unknown, bin: string | null, fn: (h: Home) => Promise<void>): Promise<void> {
  const h = await makeHome(
    config,
    { PATH: bin ? `${bin}:${PATH_WITHOUT_SMI}` : PATH_WITHOUT_SMI },
    { autoCleanup: false },
  );
  try {
    await fn(h);
  } finally {
    await h.cleanup();
    if (bin) await rm(bin, { recursive: true, force: true });
  }
}

describe.concurrent('the local node finds its GPUs', () => {
  it('with nvidia-smi listing 2 GPUs: submit --gpus 1 runs on one of them, nodes shows both, list never asks', async () => {
    const bin = await fakeNvidiaSmiGpus(2);
    await withHome(undefined, bin, async (h) => {
      const list = await gpuq(h, ['list']);
      expect(list.code, list.stderr).toBe(0);
      expect(listings(bin)).toBe(0);

      // Two submits in a row: the list found by the first is kept a minute, so the second does not ask.
      const one = await gpuq(h, ['submit', 'examples/hello.py', '--gpus', '1', '-q']);
      expect(one.code, one.stderr).toBe(0);
      const two = await gpuq(h, ['submit', 'examples/hello.py', '--gpus', '2', '-q']);
      expect(two.code, two.stderr).toBe(0);
      expect(listings(bin)).toBe(1);

      const waited = await gpuq(h, ['wait', one.stdout.trim(), two.stdout.trim(), '--json']);
      expect(waited.code, waited.stderr).toBe(0);
      const done = JSON.parse(waited.stdout) as { id: string; gpus: number[] }[];
      const first = done.find((j) => j.id === one.stdout.trim());
      const second = done.find((j) => j.id === two.stdout.trim());
      expect(first?.gpus).toHaveLength(1);
      expect([0, 1]).toContain(first?.gpus[0]);
      expect(second?.gpus).toEqual([0, 1]);
      const logs = await gpuq(h, ['logs', one.stdout.trim(), '--stdout']);
      expect(logs.stdout).toContain(`CUDA_VISIBLE_DEVICES = ${first?.gpus[0]}\n`);

      const nodes = await gpuq(h, ['nodes', '--json']);
      expect(nodes.code, nodes.stderr).toBe(0);
      const [local] = JSON.parse(nodes.stdout) as { configuredGpus: number[]; status: { gpus: unknown[] } }[];
      expect(local?.configuredGpus).toEqual([0, 1]);
      expect(local?.status.gpus).toHaveLength(2);
      const table = await gpuq(h, ['nodes']);
      expect(table.stdout).toMatch(/GPU 0 Stand-in GPU/);
      expect(table.stdout).toMatch(/GPU 1 Stand-in GPU/);
      expect(listings(bin)).toBe(3); // nodes asks afresh each time
    });
  });

  it('without nvidia-smi: submit --gpus 1 is refused (exit 2), saying no GPU was found and how to configure one', async () => {
    await withHome(undefined, null, async (h) => {
      const r = await gpuq(h, ['submit', 'examples/hello.py', '--gpus', '1']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/no GPU was found for node local: nvidia-smi is not installed here/);
      expect(r.stderr).toMatch(/Submit without --gpus, or list the GPUs .*"gpus": \[0\]/);
      expect(r.stdout).toBe('');
      const list = await gpuq(h, ['list', '--json']);
      expect(JSON.parse(list.stdout)).toEqual([]);
      // A job without GPUs still runs there.
      const plain = await gpuq(h, ['submit', 'examples/hello.py', '--wait']);
      expect(plain.code, plain.stderr).toBe(0);
    });
  });

  it('a failing or hung nvidia-smi means no GPU, within a bounded time', async () => {
    const failing = await fakeNvidiaSmiGpus(2, 'fail');
    const hung = await fakeNvidiaSmiGpus(2, 'hang');
    await Promise.all([
      withHome(undefined, failing, async (h) => {
        const r = await gpuq(h, ['submit', 'examples/hello.py', '--gpus', '1']);
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toMatch(/no GPU was found for node local: nvidia-smi failed \(exit 9\)/);
      }),
      withHome(undefined, hung, async (h) => {
        const t0 = Date.now();
        const r = await gpuq(h, ['submit', 'examples/hello.py', '--gpus', '1']);
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toMatch(/nvidia-smi did not answer within 5 s/);
        expect(Date.now() - t0).toBeLessThan(30_000);
      }),
    ]);
  });

  it('a job that asks for no GPU sees none of the GPUs found', async () => {
    const bin = await fakeNvidiaSmiGpus(1);
    await withHome(undefined, bin, async (h) => {
      const r = await gpuq(h, ['submit', 'examples/hello.py', '--wait', '-q']);
      expect(r.code, r.stderr).toBe(0);
      const logs = await gpuq(h, ['logs', r.stdout.trim(), '--stdout']);
      expect(logs.stdout).toContain('CUDA_VISIBLE_DEVICES = \n');
    });
  });

  it('"gpus" in the config wins over what nvidia-smi lists', async () => {
    const bin = await fakeNvidiaSmiGpus(2);
    await withHome({ nodes: { local: { transport: 'local', gpus: [1] } } }, bin, async (h) => {
      const r = await gpuq(h, ['submit', 'examples/hello.py', '--gpus', '2']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/no node has 2 GPU\(s\)/);
      expect(listings(bin)).toBe(0);
    });
  });
});
