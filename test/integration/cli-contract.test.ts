/**
 * The public contract (CONTRACT.md) end to end through the CLI on the embedded local node: list
 * filters and order, `wait --json`, `cancel` on several, finished and unknown jobs, exit 13 for a
 * CUDA out-of-memory traceback, `.sh` and `#!` programs, bad values for every limit option, and
 * where the config and the ledger live without GPUQ_HOME.
 */
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import {
  gpuq,
  gpuqJson,
  type Home,
  makeGate,
  makeHome,
  type RunResult,
  tempDir,
  writeProgram,
} from '../helpers/cli.js';
import { gpuqInProcess } from '../helpers/in-process.js';

/** Two local nodes, so that --node has something to tell apart. */
const TWO_NODES = { nodes: { local: { transport: 'local' }, other: { transport: 'local' } } };

async function submitWait(h: Home, file: string, ...opts: string[]): Promise<string> {
  const r = await gpuq(h, ['submit', file, '--wait', '-q', ...opts]);
  expect(r.stdout.trim(), r.stderr).toMatch(/^[0-9a-z]{8}$/);
  return r.stdout.trim();
}

describe('list and wait --json', () => {
  it('list prints newest first and filters by --state, --node and --limit; wait --json prints the verdicts', async () => {
    const h = await makeHome(TWO_NODES);
    const ok = await writeProgram('ok.py', 'print("ok")\n');
    const bad = await writeProgram('bad.py', 'raise SystemExit(3)\n');
    // One after another, so their creation times are ordered; waited for together below.
    const submit = async (file: string, node: string) => {
      const r = await gpuq(h, ['submit', file, '-q', '--node', node]);
      expect(r.stdout.trim(), r.stderr).toMatch(/^[0-9a-z]{8}$/);
      return r.stdout.trim();
    };
    const a = await submit(ok, 'local');
    const b = await submit(bad, 'other');
    const c = await submit(ok, 'other');
    // wait --json: one JSON array with the verdicts, and the worst code
    const r = await gpuq(h, ['wait', a, b, c, '--json']);
    expect(r.code, r.stderr).toBe(10);
    const jobs = JSON.parse(r.stdout) as Job[];
    expect(Array.isArray(jobs)).toBe(true);
    expect(jobs.map((j) => j.id).sort()).toEqual([a, b, c].sort());
    const byId = new Map(jobs.map((j) => [j.id, j]));
    expect(byId.get(a)).toMatchObject({ state: 'done', verdict: { class: 'succeeded', exitCode: 0 } });
    expect(byId.get(b)).toMatchObject({ state: 'done', verdict: { class: 'failed', exitCode: 3 } });

    // The filters read the ledger alone (every job is done): in this process (main(), what the
    // binary runs) instead of a node start each; the human table and the plain list through the binary.
    const ids = async (...args: string[]) => {
      const r = await gpuqInProcess(h, ['list', ...args, '--json']);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as Job[]).map((j) => j.id);
    };
    const queries: Array<[string[], string[]]> = [
      [[], [c, b, a]],
      [
        ['--node', 'other'],
        [c, b],
      ],
      [['--node', 'local'], [a]],
      [['--state', 'failed'], [b]],
      [
        ['--state', 'succeeded'],
        [c, a],
      ],
      [
        ['--state', 'done'],
        [c, b, a],
      ],
      [['--state', 'running'], []],
      [
        ['--limit', '2'],
        [c, b],
      ],
      [['--node', 'other', '--state', 'succeeded', '--limit', '1'], [c]],
    ];
    const [found, human, binaryList, bogus, none] = await Promise.all([
      Promise.all(queries.map(([args]) => ids(...args))),
      gpuq(h, ['list']).then((r) => r.stdout),
      gpuqJson<Job[]>(h, ['list']),
      gpuq(h, ['list', '--state', 'bogus']),
      gpuq(h, ['list', '--state', 'timeout']),
    ]);
    for (const [i, [args, want]] of queries.entries()) expect(found[i], args.join(' ')).toEqual(want);
    expect(binaryList.map((j) => j.id)).toEqual([c, b, a]);
    // The human table: the same order.
    expect(human.indexOf(c)).toBeLessThan(human.indexOf(b));
    expect(human.indexOf(b)).toBeLessThan(human.indexOf(a));
    // and it answers "why": the cause and exit status column
    expect(human).toMatch(/CAUSE \/ EXIT/);
    expect(human.split('\n').find((l) => l.startsWith(b))).toMatch(/failed .* exit 3$/);
    expect(human.split('\n').find((l) => l.startsWith(a))).toMatch(/succeeded .* exit 0$/);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toMatch(/--state "bogus" is neither a state nor a verdict[\s\S]*running, .*timeout/);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/no job matches --state timeout among 3 jobs/);
    // bad --limit values: refused before any node is asked (in process; one through the binary)
    expect(await gpuq(h, ['list', '--limit', '0'])).toEqual(await gpuqInProcess(h, ['list', '--limit', '0']));
    for (const v of ['0', '-1', 'abc']) {
      const r = await gpuqInProcess(h, ['list', '--limit', v]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/--limit/);
    }
  });
});

describe('cancel', () => {
  it('cancels several jobs at once (wait exits 16); on a finished job changes nothing; an unknown id exits 4', async () => {
    const h = await makeHome();
    const gate = await makeGate(); // never opened: the jobs wait until cancelled (60 s at most)
    const src = `${gate.pyDef}print("holding", flush=True)\ngate_wait()\n`;
    const progs = [await writeProgram('hold.py', src), await writeProgram('hold2.py', src)];
    const sub = await gpuq(h, ['submit', ...progs, '-q']);
    expect(sub.code, sub.stderr).toBe(0);
    const [a, b] = sub.stdout.trim().split('\n') as [string, string];
    const c = await gpuq(h, ['cancel', a, b]);
    expect(c.code, c.stderr).toBe(0);
    const w = await gpuq(h, ['wait', a, b, '--json']);
    expect(w.code, w.stderr).toBe(16);
    expect((JSON.parse(w.stdout) as Job[]).map((j) => j.verdict?.class)).toEqual(['cancelled', 'cancelled']);

    // a finished (here: cancelled) job: nothing changes, and it says the job had ended
    const before = await gpuqJson<Job>(h, ['show', a]);
    const r = await gpuq(h, ['cancel', a]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/already ended/);
    expect(await gpuqJson<Job>(h, ['show', a])).toEqual(before);
    const unknown = await gpuq(h, ['cancel', 'qqqqqqqq']);
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toMatch(/no job matches "qqqqqqqq"/);
    // An unknown id among known ones: nothing is cancelled, exit 4.
    expect((await gpuq(h, ['cancel', a, 'qqqqqqqq'])).code).toBe(4);
  });
});

describe('verdicts from the program', () => {
  // One bulk submit, the same arguments for all: a CUDA OOM traceback, a .sh program and a #!
  // program executable or not on this side.
  it('a PyTorch CUDA out-of-memory traceback is gpu_oom, exit 13; .sh runs with bash and #! with its own interpreter, arguments passed', async () => {
    const h = await makeHome();
    const oom = await writeProgram(
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
    const sh = await writeProgram('job.sh', 'echo "from bash $BASH_VERSION" | cut -c1-9; echo "args: $*"\n');
    const tools = [
      await writeProgram('tool', '#!/bin/sh\necho "shebang $1"\n'),
      await writeProgram('tool', '#!/bin/sh\necho "shebang $1"\n'),
    ];
    chmodSync(tools[0] as string, 0o755); // executable on this side; tools[1] is not
    const r = await gpuq(h, ['submit', oom, sh, ...tools, '--arg', 'one', '--arg', 'two words', '--wait', '--json']);
    expect(r.code, r.stderr).toBe(13);
    const [o, s, t1, t2] = JSON.parse(r.stdout) as Job[];
    expect(o?.verdict).toMatchObject({ class: 'gpu_oom', exitCode: 1 });
    expect(s?.verdict?.class, s?.verdict?.summary).toBe('succeeded');
    expect((await gpuq(h, ['logs', s?.id as string])).stdout).toBe('from bash\nargs: one two words\n');
    for (const [t, what] of [
      [t1, 'executable'],
      [t2, 'plain'],
    ] as const) {
      expect(t?.verdict?.class, `${what}: ${t?.verdict?.summary}`).toBe('succeeded');
      expect(readFileSync(join(t?.remote?.dir as string, 'stdout.log'), 'utf8'), what).toBe('shebang one\n');
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

  it(`refuses all ${cases.length} of them (each kind also through the real binary)`, async () => {
    const h = await makeHome();
    const ok = await writeProgram('ok.py', 'print(1)\n');
    const results: RunResult[] = [];
    for (const [o, v] of cases) results.push(await gpuqInProcess(h, ['submit', ok, `${o}=${v}`]));
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
