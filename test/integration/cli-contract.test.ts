/**
 * The public contract (CONTRACT.md) end to end through the CLI on the embedded local node: list
 * filters and order, `wait --json`, `cancel` on several, finished and unknown jobs, exit 13 for a
 * CUDA out-of-memory traceback, `.sh` and `#!` programs, bad values for every limit option, and
 * where the config and the ledger live without GPUQ_HOME.
 */
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import type { Job } from '../../src/core/types.js';
import {
  gpuq,
  gpuqJson,
  type Home,
  makeGate,
  makeHome,
  REPO,
  type RunResult,
  tempDir,
  writeProgram,
} from '../helpers/cli.js';

/** Two local nodes, so that --node has something to tell apart. */
const TWO_NODES = { nodes: { local: { transport: 'local' }, other: { transport: 'local' } } };

async function submitWait(h: Home, file: string, ...opts: string[]): Promise<string> {
  const r = await gpuq(h, ['submit', file, '--wait', '-q', ...opts]);
  expect(r.stdout.trim(), r.stderr).toMatch(/^[0-9a-z]{8}$/);
  return r.stdout.trim();
}

describe('list', () => {
  it('prints newest first and filters by --state, --node and --limit', async () => {
    const h = await makeHome(TWO_NODES);
    const ok = await writeProgram('ok.py', 'print("ok")\n');
    const bad = await writeProgram('bad.py', 'raise SystemExit(3)\n');
    // One after another, so their creation times are ordered.
    const a = await submitWait(h, ok, '--node', 'local');
    const b = await submitWait(h, bad, '--node', 'other');
    const c = await submitWait(h, ok, '--node', 'other');
    const ids = async (...args: string[]) => (await gpuqJson<Job[]>(h, ['list', ...args])).map((j) => j.id);
    expect(await ids()).toEqual([c, b, a]);
    expect(await ids('--node', 'other')).toEqual([c, b]);
    expect(await ids('--node', 'local')).toEqual([a]);
    expect(await ids('--state', 'failed')).toEqual([b]);
    expect(await ids('--state', 'succeeded')).toEqual([c, a]);
    expect(await ids('--state', 'done')).toEqual([c, b, a]);
    expect(await ids('--state', 'running')).toEqual([]);
    expect(await ids('--limit', '2')).toEqual([c, b]);
    expect(await ids('--node', 'other', '--state', 'succeeded', '--limit', '1')).toEqual([c]);
    // The human table: the same order.
    const human = (await gpuq(h, ['list'])).stdout;
    expect(human.indexOf(c)).toBeLessThan(human.indexOf(b));
    expect(human.indexOf(b)).toBeLessThan(human.indexOf(a));
    // and it answers "why": the cause and exit status column
    expect(human).toMatch(/CAUSE \/ EXIT/);
    expect(human.split('\n').find((l) => l.startsWith(b))).toMatch(/failed .* exit 3$/);
    expect(human.split('\n').find((l) => l.startsWith(a))).toMatch(/succeeded .* exit 0$/);
    const bogus = await gpuq(h, ['list', '--state', 'bogus']);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toMatch(/--state "bogus" is neither a state nor a verdict[\s\S]*running, .*timeout/);
    const none = await gpuq(h, ['list', '--state', 'timeout']);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/no job matches --state timeout among 3 jobs/);
    for (const v of ['0', '-1', 'abc']) {
      const r = await gpuq(h, ['list', '--limit', v]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/--limit/);
    }
  });
});

describe('wait --json', () => {
  it('prints the jobs as one JSON array with their verdicts, and exits with the worst code', async () => {
    const h = await makeHome();
    const ok = await writeProgram('ok.py', 'print("ok")\n');
    const bad = await writeProgram('bad.py', 'raise SystemExit(3)\n');
    const a = (await gpuq(h, ['submit', ok, '-q'])).stdout.trim();
    const b = (await gpuq(h, ['submit', bad, '-q'])).stdout.trim();
    const r = await gpuq(h, ['wait', a, b, '--json']);
    expect(r.code, r.stderr).toBe(10);
    const jobs = JSON.parse(r.stdout) as Job[];
    expect(Array.isArray(jobs)).toBe(true);
    expect(jobs.map((j) => j.id).sort()).toEqual([a, b].sort());
    const byId = new Map(jobs.map((j) => [j.id, j]));
    expect(byId.get(a)).toMatchObject({ state: 'done', verdict: { class: 'succeeded', exitCode: 0 } });
    expect(byId.get(b)).toMatchObject({ state: 'done', verdict: { class: 'failed', exitCode: 3 } });
  });
});

describe('cancel', () => {
  it('cancels several jobs at once: each cancelled, wait exits 16', async () => {
    const h = await makeHome();
    const gate = await makeGate(); // never opened: the jobs wait until cancelled (60 s at most)
    const prog = await writeProgram('hold.py', `${gate.pyDef}print("holding", flush=True)\ngate_wait()\n`);
    const a = (await gpuq(h, ['submit', prog, '-q'])).stdout.trim();
    const b = (await gpuq(h, ['submit', prog, '-q'])).stdout.trim();
    const c = await gpuq(h, ['cancel', a, b]);
    expect(c.code, c.stderr).toBe(0);
    const w = await gpuq(h, ['wait', a, b]);
    expect(w.code, w.stderr).toBe(16);
    for (const id of [a, b]) expect((await gpuqJson<Job>(h, ['show', id])).verdict?.class).toBe('cancelled');
  });

  it('on a finished job changes nothing and says it had ended; an unknown id exits 4', async () => {
    const h = await makeHome();
    const id = await submitWait(h, await writeProgram('ok.py', 'print("ok")\n'));
    const before = await gpuqJson<Job>(h, ['show', id]);
    const r = await gpuq(h, ['cancel', id]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/already ended/);
    expect(await gpuqJson<Job>(h, ['show', id])).toEqual(before);
    const unknown = await gpuq(h, ['cancel', 'qqqqqqqq']);
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toMatch(/no job matches "qqqqqqqq"/);
    // An unknown id among known ones: nothing is cancelled, exit 4.
    expect((await gpuq(h, ['cancel', id, 'qqqqqqqq'])).code).toBe(4);
  });
});

describe('verdicts from the program', () => {
  it('a PyTorch CUDA out-of-memory traceback is gpu_oom, exit 13', async () => {
    const h = await makeHome();
    const prog = await writeProgram(
      'train.py',
      `${[
        'import sys',
        'print("epoch 1", flush=True)',
        'print("Traceback (most recent call last):", file=sys.stderr)',
        'print(\'  File "train.py", line 12, in <module>\', file=sys.stderr)',
        'print("    x = torch.empty((1 << 34,), device=\\"cuda\\")", file=sys.stderr)',
        'print("torch.OutOfMemoryError: CUDA out of memory. ' +
          'Tried to allocate 64.00 GiB. GPU 0 has a total capacity of 79.11 GiB of which ' +
          '1.20 GiB is free.", file=sys.stderr)',
        'sys.exit(1)',
      ].join('\n')}\n`,
    );
    const r = await gpuq(h, ['submit', prog, '--wait', '--json']);
    expect(r.code, r.stderr).toBe(13);
    expect((JSON.parse(r.stdout) as Job).verdict).toMatchObject({ class: 'gpu_oom', exitCode: 1 });
  });

  it('runs a .sh program with bash, arguments passed', async () => {
    const h = await makeHome();
    const prog = await writeProgram('job.sh', 'echo "from bash $BASH_VERSION" | cut -c1-9; echo "args: $*"\n');
    const id = await submitWait(h, prog, '--arg', 'one', '--arg', 'two words');
    expect((await gpuqJson<Job>(h, ['show', id])).verdict?.class).toBe('succeeded');
    expect((await gpuq(h, ['logs', id])).stdout).toBe('from bash\nargs: one two words\n');
  });

  it('runs a #! program with its own interpreter, executable or not on this side', async () => {
    const h = await makeHome();
    for (const executable of [true, false]) {
      const prog = await writeProgram('tool', '#!/bin/sh\necho "shebang $1"\n');
      if (executable) chmodSync(prog, 0o755);
      const id = await submitWait(h, prog, '--arg', 'ok');
      const job = await gpuqJson<Job>(h, ['show', id]);
      expect(job.verdict?.class, `${executable ? 'executable' : 'plain'}: ${job.verdict?.summary}`).toBe('succeeded');
      expect((await gpuq(h, ['logs', id])).stdout).toBe('shebang ok\n');
    }
  });
});

describe('bad values for every limit option: exit 2 naming the option, nothing recorded', () => {
  const durations = ['--timeout', '--grace', '--cpu-time'];
  const sizes = ['--memory', '--file-size'];
  const counts = ['--pids', '--files'];
  const cases: [string, string, RegExp][] = [];
  for (const o of durations)
    for (const [v, why] of [
      ['0', /more than zero/],
      ['-5m', /not a duration/],
      ['soon', /not a duration/],
      ['10x', /not a duration/],
      ['99999h', /longer than/],
    ] as const)
      cases.push([o, v, why]);
  for (const o of sizes)
    for (const [v, why] of [
      ['0', /more than zero/],
      ['-1g', /not a size/],
      ['12 parsecs', /not a size|unknown unit/],
      ['1e30g', /not a size|larger than/],
      ['999999t', /larger than/],
    ] as const)
      cases.push([o, v, why]);
  for (const o of counts)
    for (const [v, why] of [
      ['0', /more than zero/],
      ['-3', /not a whole number/],
      ['1.5', /not a whole number/],
      ['many', /not a whole number/],
      ['99999999999', /more than the allowed/],
    ] as const)
      cases.push([o, v, why]);
  for (const [v, why] of [
    ['-1', /not a whole number/],
    ['two', /not a whole number/],
    ['100000', /more than the allowed/],
  ] as const)
    cases.push(['--gpus', v, why]);

  /**
   * The CLI's own entry (main(), what bin/gpuq.js runs) in this process: the whole table costs
   * milliseconds instead of 38 node starts (about 11 s of CPU). A case of each kind also goes
   * through the real binary, below.
   */
  async function inProcess(h: Home, args: string[]): Promise<RunResult> {
    let stdout = '';
    let stderr = '';
    const sink = (add: (t: string) => void) =>
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          add(chunk.toString('utf8'));
          cb();
        },
      });
    const code = await main(['node', 'gpuq', ...args], {
      stdout: sink((t) => (stdout += t)),
      stderr: sink((t) => (stderr += t)),
      stdin: new PassThrough(),
      env: h.env,
      cwd: REPO,
    });
    return { code, signal: null, stdout, stderr };
  }

  it(`refuses all ${cases.length} of them (each kind also through the real binary)`, async () => {
    const h = await makeHome();
    const ok = await writeProgram('ok.py', 'print(1)\n');
    const results: RunResult[] = [];
    for (const [o, v] of cases) results.push(await inProcess(h, ['submit', ok, `${o}=${v}`]));
    // One case of each kind (duration, size, count, GPUs) through the binary, at once.
    const binary = ['--timeout', '--memory', '--pids', '--gpus'].map((o) => cases.findIndex((c) => c[0] === o));
    const viaBinary = await Promise.all(binary.map((i) => gpuq(h, ['submit', ok, `${cases[i]![0]}=${cases[i]![1]}`])));
    binary.forEach((i, k) => {
      expect(viaBinary[k], `${cases[i]![0]}=${cases[i]![1]} through the binary`).toEqual(results[i]);
    });
    for (const [i, [o, v, why]] of cases.entries()) {
      const r = results[i]!;
      const what = `${o}=${v}: ${r.stderr}`;
      expect(r.code, what).toBe(2);
      expect(r.stderr, what).toContain(o);
      expect(r.stderr, what).toMatch(why);
      expect(r.stderr.trim().split('\n').length, what).toBeLessThanOrEqual(2);
      expect(r.stdout, what).toBe('');
    }
    expect(await gpuqJson<Job[]>(h, ['list', '--all'])).toEqual([]);
  });
});

describe('where the config and the ledger live without GPUQ_HOME', () => {
  /** An environment with no GPUQ_HOME, its own HOME and XDG folders. */
  async function bareEnv(): Promise<{ root: string; home: Home }> {
    const root = await tempDir('gpuq-xdg-');
    const h = await makeHome();
    const env: NodeJS.ProcessEnv = {
      ...h.env,
      HOME: join(root, 'home'),
      XDG_CONFIG_HOME: join(root, 'cfg'),
      XDG_STATE_HOME: join(root, 'state'),
    };
    delete env.GPUQ_HOME;
    mkdirSync(join(root, 'home'));
    mkdirSync(join(root, 'cwd'));
    return { root, home: { ...h, env } };
  }
  /** A config that is invalid in a way that names its own file: which file was read shows in the error. */
  const badConfig = (path: string) => {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, JSON.stringify({ defaults: { timeout: 'forever' } }));
  };

  it('reads $XDG_CONFIG_HOME/gpuq/config.json, then ./gpuq.config.json over it, then --config over both', async () => {
    const { root, home } = await bareEnv();
    const cwd = join(root, 'cwd');
    const xdg = join(root, 'cfg', 'gpuq', 'config.json');
    badConfig(xdg);
    let r = await gpuq(home, ['list'], { cwd });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(xdg);

    const local = join(cwd, 'gpuq.config.json');
    badConfig(local);
    r = await gpuq(home, ['list'], { cwd });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(local);

    const explicit = join(root, 'explicit.json');
    badConfig(explicit);
    r = await gpuq(home, ['list', '--config', explicit], { cwd });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(explicit);

    // A good --config wins over the bad ones.
    writeFileSync(explicit, JSON.stringify({ defaults: { timeout: '5m' } }));
    r = await gpuq(home, ['list', '--config', explicit], { cwd });
    expect(r.code, r.stderr).toBe(0);
  });

  it('keeps the ledger at $XDG_STATE_HOME/gpuq/ledger.json, mode 0600', async () => {
    const { root, home } = await bareEnv();
    const id = await submitWait(home, await writeProgram('ok.py', 'print(1)\n'));
    const ledger = join(root, 'state', 'gpuq', 'ledger.json');
    expect(statSync(ledger).mode & 0o777).toBe(0o600);
    expect((await gpuqJson<Job[]>(home, ['list'])).map((j) => j.id)).toEqual([id]);
  });
});
