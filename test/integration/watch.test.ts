/**
 * `gpuq watch` without a terminal, against real jobs on the local node: plain timestamped lines
 * and the verdict's exit code, NDJSON events, how soon the end shows, a finished job, a bad id.
 */
import { rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpuq, makeHome, startGpuq, writeProgram, type Home } from '../helpers/cli.js';
import { fakeNvidiaSmi } from '../helpers/nvidia-smi.js';

const TS = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ';

let home: Home;
beforeAll(async () => {
  home = await makeHome();
});
afterAll(async () => {
  await home.cleanup();
});

async function submit(name: string, program: string, ...opts: string[]): Promise<string> {
  const file = await writeProgram(name, program);
  const r = await gpuq(home, ['submit', file, '-q', ...opts]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

describe('gpuq watch without a TTY', () => {
  it('prints timestamped state, log and resource lines, then exits with the verdict code', async () => {
    const id = await submit(
      'fails.py',
      'import sys, time\nfor i in range(3):\n    print("line", i)\n' +
        '    time.sleep(0.3)\nprint("oops", file=sys.stderr)\nsys.exit(3)\n',
    );
    const r = await gpuq(home, ['watch', id]);
    expect(r.code, r.stderr).toBe(10);
    const out = r.stdout.split('\n').filter(Boolean);
    for (const l of out) expect(l).toMatch(new RegExp(`^${TS} `));
    expect(out[0]).toMatch(
      new RegExp(`^${TS} job ${id} \\(fails\\.py\\) on local, no GPU: running · timeout 1h00m00s`),
    );
    expect(out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/ \[stdout\] line 0$/),
        expect.stringMatching(/ \[stdout\] line 2$/),
        expect.stringMatching(/ \[stderr\] oops$/),
      ]),
    );
    expect(
      out.some((l) =>
        / resources: RSS [\d.]+ [KMG]iB \/ 16.0 GiB \(\d+%\) · CPU \d+% · tasks \d+ \/ 1024 \(\d+ process(es)?\) · folder /.test(
          l,
        ),
      ),
    ).toBe(true);
    // The verdict with the duration every command prints, the recorded peaks, then the first hint.
    const done = out.findIndex((l) => / done: failed, exit 3, ran \S+: /.test(l));
    expect(done, out.join('\n')).toBeGreaterThan(0);
    expect(out.slice(done + 1, -1).every((l) => / peak: /.test(l))).toBe(true);
    expect(out.slice(done + 1, -1).some((l) => / peak: ran \S+ of the 1h wall-clock limit/.test(l))).toBe(true);
    expect(out.at(-1)).toMatch(/ hint: /);
    expect(r.stderr).toBe('');
  });

  it('prints NDJSON events with --json and shows the end promptly after status.json', async () => {
    const id = await submit('ok.py', 'import time\nprint("hello", flush=True)\ntime.sleep(1)\nprint("bye")\n');
    const run = startGpuq(home, ['watch', id, '--json']);
    // On the text so far, not on one chunk: the verdict line may arrive split across chunks.
    let verdictSeenAt = 0;
    let sofar = '';
    run.child.stdout?.on('data', (d: Buffer) => {
      sofar += d.toString();
      if (verdictSeenAt === 0 && sofar.includes('"type":"verdict"')) verdictSeenAt = Date.now();
    });
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    const recs = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; [k: string]: unknown });
    expect(recs[0]).toMatchObject({ type: 'job', state: 'running', job: { id } });
    expect(recs.filter((e) => e.type === 'log').map((e) => e.line)).toEqual(['hello', 'bye']);
    expect(recs.some((e) => e.type === 'sample')).toBe(true);
    expect(recs.at(-1)).toMatchObject({
      type: 'verdict',
      exitCode: 0,
      verdict: { class: 'succeeded' },
      job: { state: 'done' },
    });
    // status.json is rewritten last, when the supervisor is done: the view shows it promptly, on
    // the supervisor's lock being let go, not at a poll (the bound is loose for a loaded machine).
    const show = JSON.parse((await gpuq(home, ['show', id, '--json'])).stdout) as { remote: { dir: string } };
    const written = (await stat(join(show.remote.dir, 'status.json'))).mtimeMs;
    expect(verdictSeenAt, 'the verdict line was never seen').toBeGreaterThan(0);
    expect(verdictSeenAt - written).toBeLessThan(5000);
  });

  it('shows a finished job at once: its logs and verdict', async () => {
    const id = await submit('quick.py', 'print("done already")\n', '--wait');
    const r = await gpuq(home, ['watch', id]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\[stdout\] done already/);
    expect(r.stdout).toMatch(/done: succeeded/);
  });

  it('exits 4 for an unknown job', async () => {
    const r = await gpuq(home, ['watch', 'zzzzzzzz']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/no job matches/);
  });
});

describe('gpuq watch on a node with a GPU', () => {
  it("prints the GPU memory, the job's share and the utilisation the sampler reads", async () => {
    // A stand-in nvidia-smi reports one GPU, with the job's main pid as a compute app.
    const { bin, pidFile: pidPath } = await fakeNvidiaSmi({ memMiB: 1234, utilPct: 37, jobMemMiB: 1000 });
    const gpuHome = await makeHome(undefined, { PATH: `${bin}:${process.env.PATH ?? ''}` });
    try {
      const prog = join(bin, 'gpu_job.py');
      await writeFile(
        prog,
        `import os, time\nopen(${JSON.stringify(pidPath)}, "w").write(str(os.getpid()))\ntime.sleep(4)\n`,
      );
      // The local node finds the stand-in's GPU; a job that asks for none would not see it.
      const sub = await gpuq(gpuHome, ['submit', prog, '--gpus', '1', '-q']);
      expect(sub.code, sub.stderr).toBe(0);
      const r = await gpuq(gpuHome, ['watch', sub.stdout.trim()]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/ resources: .* · GPU0 mem 1\.21 GiB \(job 1000 MiB\) util 37% · folder /);
    } finally {
      await gpuHome.cleanup();
      await rm(bin, { recursive: true, force: true });
    }
  });
});
