/**
 * End to end on the embedded local node (the real binary, real supervisors, real processes; each
 * test its own GPUQ_HOME), split from cli-local.test.ts so vitest runs the parts in parallel:
 * submit, logs, list and show on the embedded local node (the installed binary: cli-install.test.ts).
 */
import { existsSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { gpuq, gpuqJson, type Home, makeGate, makeHome, tempDir, writeProgram } from '../helpers/cli.js';

/** A GPUQ_HOME removed, with what is left of its jobs, when the test ends. */
function home(config?: unknown): Promise<Home> {
  return makeHome(config);
}

describe('submit, logs, list, show', () => {
  it('runs examples/hello.py: prints the id, exits 0, logs show the output', async () => {
    const h = await home();
    const r = await gpuq(h, ['submit', 'examples/hello.py', '--wait']);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code).toBe(0);
    const id = r.stdout.split('\n')[0] as string;
    expect(id).toMatch(/^[0-9a-z]{8}$/);
    expect(r.stdout).toMatch(/succeeded/);
    const logs = await gpuq(h, ['logs', id]);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain(`hello from gpuq job ${id}`);

    const job = await gpuqJson<Job>(h, ['show', id]);
    expect(job).toMatchObject({
      id,
      name: 'hello.py',
      node: 'local',
      state: 'done',
      verdict: { class: 'succeeded', exitCode: 0 },
    });
    expect(job.history.map((e) => e.state)).toEqual(['pending', 'running', 'done']);
    const list = await gpuqJson<Job[]>(h, ['list']);
    expect(list.map((j) => j.id)).toEqual([id]);
    // the ledger is private
    expect(statSync(join(h.dir, 'ledger.json')).mode & 0o777).toBe(0o600);
    // the job folder is private
    expect(statSync(job.remote?.dir as string).mode & 0o077).toBe(0);
  });

  it('returns as soon as the job started, and the job outlives the caller', async () => {
    const h = await home();
    // it runs until the test lets it go (at most 60 s), so "running" is not a race with a loaded machine
    const gate = await makeGate();
    const prog = await writeProgram('slow.py', `${gate.pyDef}gate_wait()\nprint("done", flush=True)\n`);
    const r = await gpuq(h, ['submit', prog, '-q']);
    expect(r.code).toBe(0);
    const id = r.stdout.trim();
    expect(id).toMatch(/^[0-9a-z]{8}$/);
    const running = await gpuqJson<Job>(h, ['show', id]);
    expect(running.state).toBe('running');
    await gate.open();
    const w = await gpuq(h, ['wait', id]);
    expect(w.code).toBe(0);
    expect((await gpuq(h, ['logs', id])).stdout).toBe('done\n');
  });

  it('keeps stdout and stderr apart, and --tail, --stdout, --stderr select', async () => {
    const h = await home();
    const prog = await writeProgram(
      'both.py',
      'import sys\nfor i in range(5):\n    print(f"out {i}")\n    print(f"err {i}", file=sys.stderr)\n',
    );
    const id = (await gpuq(h, ['submit', prog, '--wait', '-q'])).stdout.trim();
    const all = await gpuq(h, ['logs', id]);
    expect(all.stdout).toBe('out 0\nout 1\nout 2\nout 3\nout 4\n');
    expect(all.stderr).toBe('err 0\nerr 1\nerr 2\nerr 3\nerr 4\n');
    const tail = await gpuq(h, ['logs', id, '--tail', '2', '--stdout']);
    expect(tail.stdout).toBe('out 3\nout 4\n');
    expect(tail.stderr).toBe('');
    const err = await gpuq(h, ['logs', id, '--stderr']);
    expect(err.stdout).toBe('');
    expect(err.stderr).toContain('err 4');
  });

  it('logs -f follows until the end without repeating or losing lines', async () => {
    const h = await home();
    const prog = await writeProgram(
      'count.py',
      'import time\nfor i in range(30):\n    print(f"line {i}", flush=True)\n    time.sleep(0.05)\n',
    );
    const id = (await gpuq(h, ['submit', prog, '-q'])).stdout.trim();
    const f = await gpuq(h, ['logs', id, '-f']);
    expect(f.code).toBe(0);
    expect(f.stdout).toBe(Array.from({ length: 30 }, (_, i) => `line ${i}\n`).join(''));
  });

  it('accepts a file name with spaces and non-ASCII letters', async () => {
    const h = await home();
    const dir = await tempDir('gpuq-name-');
    const path = join(dir, 'mon programme é ü.py');
    await writeFile(path, 'print("ça marche")\n');
    const r = await gpuq(h, ['submit', path, '--wait', '-q']);
    expect(r.code).toBe(0);
    const id = r.stdout.trim();
    expect((await gpuq(h, ['logs', id])).stdout).toBe('ça marche\n');
    expect((await gpuqJson<Job>(h, ['show', id])).name).toBe('mon programme é ü.py');
  });

  it('passes hostile --name, --env and --arg values literally', async () => {
    const h = await home();
    const canary = join(await tempDir('gpuq-canary-'), 'pwned');
    const evil = `$(touch ${canary}) \`touch ${canary}\` "dq" 'sq' ; touch ${canary} \\ \n newline`;
    const prog = await writeProgram(
      'echo.py',
      'import json, os, sys\nprint(json.dumps({"args": sys.argv[1:], "env": os.environ.get("EVIL")}))\n',
    );
    const r = await gpuq(h, [
      'submit',
      prog,
      '--name',
      evil,
      '--env',
      `EVIL=${evil}`,
      '--arg',
      evil,
      '--arg',
      '--not-an-option',
      '--arg',
      '',
      '--wait',
      '-q',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const id = r.stdout.trim();
    const out = JSON.parse((await gpuq(h, ['logs', id])).stdout) as { args: string[]; env: string };
    expect(out.args).toEqual([evil, '--not-an-option', '']);
    expect(out.env).toBe(evil);
    const job = await gpuqJson<Job>(h, ['show', id]);
    expect(job.name).toBe(evil);
    expect(existsSync(canary)).toBe(false);
  });
});
