/**
 * The foundation end to end on the embedded local node: the real binary, real supervisors,
 * real processes. Each test has its own GPUQ_HOME.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync, existsSync, statSync, mkdirSync, utimesSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  alive,
  gpuq,
  gpuqJson,
  jobProcesses,
  makeHome,
  REPO,
  startGpuq,
  until,
  writeProgram,
  type Home,
} from '../helpers/cli.js';
import type { Job } from '../../src/core/types.js';

/** A job as `--json` prints it. */
type JobJson = Job;

const homes: Home[] = [];
async function home(config?: unknown): Promise<Home> {
  const h = await makeHome(config);
  homes.push(h);
  return h;
}
afterEach(async () => {
  await Promise.all(homes.splice(0).map((h) => h.cleanup()));
});

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

    const job = await gpuqJson<JobJson>(h, ['show', id]);
    expect(job).toMatchObject({
      id,
      name: 'hello.py',
      node: 'local',
      state: 'done',
      verdict: { class: 'succeeded', exitCode: 0 },
    });
    expect(job.history.map((e) => e.state)).toEqual(['pending', 'running', 'done']);
    const list = await gpuqJson<JobJson[]>(h, ['list']);
    expect(list.map((j) => j.id)).toEqual([id]);
    // the ledger is private
    expect(statSync(join(h.dir, 'ledger.json')).mode & 0o777).toBe(0o600);
    // the job folder is private
    expect(statSync(job.remote?.dir as string).mode & 0o077).toBe(0);
  });

  it('returns as soon as the job started, and the job outlives the caller', async () => {
    const h = await home();
    // it runs until the test lets it go, so "running" is not a race with a loaded machine
    const gateDir = await mkdtemp(join(tmpdir(), 'gpuq-gate-'));
    chmodSync(gateDir, 0o755); // the job may run as a uid of its own (the "uid" trust boundary)
    const gate = join(gateDir, 'go');
    const prog = await writeProgram(
      'slow.py',
      `import os, time\nwhile not os.path.exists(${JSON.stringify(gate)}):\n    time.sleep(0.05)\nprint("done", flush=True)\n`,
    );
    const r = await gpuq(h, ['submit', prog, '-q']);
    expect(r.code).toBe(0);
    const id = r.stdout.trim();
    expect(id).toMatch(/^[0-9a-z]{8}$/);
    const running = await gpuqJson<JobJson>(h, ['show', id]);
    expect(running.state).toBe('running');
    writeFileSync(gate, '');
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
    const dir = await mkdtemp(join(tmpdir(), 'gpuq-name-'));
    const path = join(dir, 'mon programme é ü.py');
    await writeFile(path, 'print("ça marche")\n');
    const r = await gpuq(h, ['submit', path, '--wait', '-q']);
    expect(r.code).toBe(0);
    const id = r.stdout.trim();
    expect((await gpuq(h, ['logs', id])).stdout).toBe('ça marche\n');
    expect((await gpuqJson<JobJson>(h, ['show', id])).name).toBe('mon programme é ü.py');
  });

  it('passes hostile --name, --env and --arg values literally', async () => {
    const h = await home();
    const canary = join(await mkdtemp(join(tmpdir(), 'gpuq-canary-')), 'pwned');
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
    const job = await gpuqJson<JobJson>(h, ['show', id]);
    expect(job.name).toBe(evil);
    expect(existsSync(canary)).toBe(false);
  });
});

describe('verdicts and exit codes', () => {
  it('a failing program: verdict failed, exit 10 from submit --wait and wait', async () => {
    const h = await home();
    const prog = await writeProgram('fail.py', 'import sys\nprint("something broke", file=sys.stderr)\nsys.exit(3)\n');
    const r = await gpuq(h, ['submit', prog, '--wait']);
    expect(r.code).toBe(10);
    const id = r.stdout.split('\n')[0] as string;
    expect(r.stdout).toMatch(/failed/);
    const w = await gpuq(h, ['wait', id]);
    expect(w.code).toBe(10);
    const job = await gpuqJson<JobJson>(h, ['show', id]);
    expect(job.verdict).toMatchObject({ class: 'failed', exitCode: 3, timedOut: false });
    expect(job.verdict?.summary).toMatch(/something broke/);
  });

  it('a timeout: verdict timeout, exit 11', async () => {
    const h = await home();
    const prog = await writeProgram('sleep.py', 'import time\ntime.sleep(60)\n');
    const r = await gpuq(h, ['submit', prog, '--timeout', '1s', '--wait', '--json']);
    expect(r.code).toBe(11);
    const job = JSON.parse(r.stdout) as JobJson;
    expect(job.verdict).toMatchObject({ class: 'timeout', timedOut: true });
  });

  it('a program ignoring SIGTERM is SIGKILLed after the grace, with its whole group', async () => {
    const h = await home();
    const prog = await writeProgram(
      'stubborn.py',
      'import signal, subprocess, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nsubprocess.Popen(["sleep", "300"])\nprint("ignoring", flush=True)\ntime.sleep(300)\n',
    );
    const r = await gpuq(h, ['submit', prog, '--timeout', '1s', '--grace', '1s', '--wait', '--json']);
    expect(r.code).toBe(11);
    const job = JSON.parse(r.stdout) as JobJson;
    expect(job.verdict).toMatchObject({ class: 'timeout', signal: 'SIGKILL' });
    expect(job.verdict?.summary).toMatch(/ignored SIGTERM/);
    expect(jobProcesses(job.id)).toEqual([]);
  });

  it('cancel stops a program and its children: verdict cancelled, exit 16, nothing survives', async () => {
    const h = await home();
    const prog = await writeProgram(
      'tree.py',
      `${[
        'import os, subprocess, time',
        'kids = [subprocess.Popen(["sleep", "300"]) for _ in range(3)]',
        'if os.fork() == 0:',
        '    os.setsid()',
        '    if os.fork() == 0:',
        '        time.sleep(300)',
        '    os._exit(0)',
        'print("started", flush=True)',
        'time.sleep(300)',
      ].join('\n')}\n`,
    );
    const id = (await gpuq(h, ['submit', prog, '-q'])).stdout.trim();
    expect(await until(async () => (await gpuq(h, ['logs', id])).stdout.includes('started'))).toBe(true);
    expect(jobProcesses(id).length).toBeGreaterThanOrEqual(5);
    const waiting = startGpuq(h, ['wait', id]);
    const c = await gpuq(h, ['cancel', id]);
    expect(c.code).toBe(0);
    const w = await waiting.done;
    expect(w.code).toBe(16);
    const job = await gpuqJson<JobJson>(h, ['show', id]);
    expect(job.verdict?.class).toBe('cancelled');
    expect(await until(() => jobProcesses(id).length === 0, 5000)).toBe(true);
  });

  it('a supervisor killed with SIGKILL makes the job lost (17), never running forever', async () => {
    const h = await home();
    const prog = await writeProgram('long.py', 'import time\ntime.sleep(300)\n');
    const id = (await gpuq(h, ['submit', prog, '-q'])).stdout.trim();
    const job = await gpuqJson<JobJson>(h, ['show', id]);
    const sup = job.remote?.supervisorPid as number;
    expect(alive(sup)).toBe(true);
    process.kill(sup, 'SIGKILL');
    // the orphaned program is not ours to judge; stop it so the test leaves nothing behind
    for (const pid of jobProcesses(id)) process.kill(pid, 'SIGKILL');
    const w = await gpuq(h, ['wait', id]);
    expect(w.code).toBe(17);
    expect((await gpuqJson<JobJson>(h, ['show', id])).verdict?.class).toBe('lost');
  });

  it('the timer of a killed supervisor stands down instead of signalling pids it no longer owns', async () => {
    const h = await home();
    const prog = await writeProgram('long.py', 'import time\ntime.sleep(300)\n');
    const id = (await gpuq(h, ['submit', prog, '--timeout', '1s', '--grace', '1s', '-q'])).stdout.trim();
    const job = await gpuqJson<JobJson>(h, ['show', id]);
    process.kill(job.remote?.supervisorPid as number, 'SIGKILL');
    const pid = job.remote?.pid as number;
    await new Promise((r) => setTimeout(r, 3000));
    // past the timeout and the grace: nothing signalled the (orphaned) program
    expect(alive(pid)).toBe(true);
    for (const p of jobProcesses(id)) process.kill(p, 'SIGKILL');
    expect((await gpuq(h, ['wait', id])).code).toBe(17);
  });

  it("--env cannot change the supervisor's own settings, only the program's environment", async () => {
    const h = await home();
    const prog = await writeProgram(
      'env.py',
      'import os, resource\nprint(os.environ["FILES_MAX"], os.environ["COMMAND"], resource.getrlimit(resource.RLIMIT_NOFILE)[0], os.environ["GPUQ_JOB_ID"])\n',
    );
    const r = await gpuq(h, [
      'submit',
      prog,
      '--files',
      '64',
      '--env',
      'FILES_MAX=0',
      '--env',
      'COMMAND=true',
      '--env',
      'JOB_DIR=/tmp',
      '--wait',
      '-q',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    expect((await gpuq(h, ['logs', id])).stdout).toBe(`0 true 64 ${id}\n`);
  });

  it('a job that forges its status.json gets the verdict of what really happened', async () => {
    const h = await home();
    const prog = await writeProgram(
      'forge.py',
      `${[
        'import json, os, sys, time',
        'try:',
        '    s = json.load(open("../status.json"))',
        '    s.update(state="exited", exitCode=0, endedAtMs=s["startedAtMs"] + 1)',
        '    open("../status.json", "w").write(json.dumps(s))',
        'except OSError:',
        '    pass  # behind a trust boundary (README, "Trust model") the attempt itself fails',
        'print("forged", flush=True)',
        // runs on until the test has seen it running (a loaded machine may take seconds per command)
        'for _ in range(600):',
        '    if os.path.exists("go"): break',
        '    time.sleep(0.1)',
        'sys.exit(3)',
      ].join('\n')}\n`,
    );
    const id = (await gpuq(h, ['submit', prog, '-q'])).stdout.trim();
    expect(await until(async () => (await gpuq(h, ['logs', id])).stdout.includes('forged'))).toBe(true);
    const during = (await gpuqJson<JobJson[]>(h, ['list'])).find((j) => j.id === id);
    expect(during?.state).toBe('running');
    const dir = (await gpuqJson<{ remote: { dir: string } }>(h, ['show', id])).remote.dir;
    writeFileSync(join(dir, 'work', 'go'), '');
    expect((await gpuq(h, ['wait', id])).code).toBe(10);
    expect((await gpuqJson<JobJson>(h, ['show', id])).verdict).toMatchObject({ class: 'failed', exitCode: 3 });
  });

  it('wait on several jobs returns the worst code', async () => {
    const h = await home();
    const ok = await writeProgram('ok.py', 'print(1)\n');
    const bad = await writeProgram('bad.py', 'raise SystemExit(2)\n');
    const a = (await gpuq(h, ['submit', ok, '-q'])).stdout.trim();
    const b = (await gpuq(h, ['submit', bad, '-q'])).stdout.trim();
    expect((await gpuq(h, ['wait', a, b])).code).toBe(10);
  });
});

describe('the ledger', () => {
  it('30 concurrent submits leave exactly 30 distinct jobs', async () => {
    const h = await home();
    const prog = await writeProgram('quick.py', 'print("hi")\n');
    const runs = await Promise.all(Array.from({ length: 30 }, () => gpuq(h, ['submit', prog, '-q'])));
    for (const r of runs) expect(r.stderr, r.stderr).not.toMatch(/error/i);
    expect(
      runs.map((r) => r.code),
      runs.map((r) => r.stderr).join(''),
    ).toEqual(Array(30).fill(0));
    const ids = runs.map((r) => r.stdout.trim());
    expect(new Set(ids).size).toBe(30);
    const list = await gpuqJson<JobJson[]>(h, ['list', '--all']);
    expect(list.map((j) => j.id).sort()).toEqual([...ids].sort());
    expect((await gpuq(h, ['wait', ...ids])).code).toBe(0);
  }, 120_000);

  it('a ledger that is not a readable file exits 5, not with a stack trace', async () => {
    const h = await home();
    mkdirSync(join(h.dir, 'ledger.json'));
    const r = await gpuq(h, ['list']);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain(join(h.dir, 'ledger.json'));
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a lock left by a dead gpuq is taken over', async () => {
    const h = await home();
    const prog = await writeProgram('ok.py', 'print(1)\n');
    const lock = join(h.dir, 'ledger.json.lock');
    mkdirSync(lock);
    const old = new Date(Date.now() - 60_000);
    utimesSync(lock, old, old);
    const r = await gpuq(h, ['submit', prog, '--wait', '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(lock)).toBe(false);
  });

  it('a corrupt ledger is never overwritten: exit 5, naming the file and the last good copy', async () => {
    const h = await home();
    const prog = await writeProgram('ok.py', 'print(1)\n');
    expect((await gpuq(h, ['submit', prog, '--wait', '-q'])).code).toBe(0);
    expect((await gpuq(h, ['submit', prog, '--wait', '-q'])).code).toBe(0);
    const path = join(h.dir, 'ledger.json');
    const good = readFileSync(path, 'utf8');
    const torn = good.slice(0, Math.floor(good.length / 2));
    writeFileSync(path, torn);
    for (const args of [['list'], ['submit', prog]]) {
      const r = await gpuq(h, args);
      expect(r.code).toBe(5);
      expect(r.stderr).toContain(path);
      expect(r.stderr).toContain('ledger.json.bak');
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(readFileSync(path, 'utf8')).toBe(torn);
    // the copy beside it is valid JSON with the first job
    expect(() => JSON.parse(readFileSync(`${path}.bak`, 'utf8'))).not.toThrow();
  });

  it('a hand-edited job missing a field is refused by name, never crashes or is overwritten; so is a damaged archive line', async () => {
    const h = await home();
    const prog = await writeProgram('ok.py', 'print(1)\n');
    const id = (await gpuq(h, ['submit', prog, '--wait', '-q'])).stdout.trim();
    const path = join(h.dir, 'ledger.json');
    const data = JSON.parse(readFileSync(path, 'utf8')) as { jobs: Record<string, unknown>[] };
    const good = { ...data.jobs[0]! };
    // an archived job, as gpuq writes one, is listed by --all
    const archive = join(h.dir, 'ledger.archive.jsonl');
    writeFileSync(archive, `${JSON.stringify({ ...good, id: 'arch0001' })}\n`);
    expect((await gpuq(h, ['list', '--all'])).stdout).toContain('arch0001');

    delete data.jobs[0]!.limits;
    const edited = JSON.stringify(data);
    writeFileSync(path, edited);
    for (const args of [['list'], ['list', '--json'], ['show', id], ['submit', prog]]) {
      const r = await gpuq(h, args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(5);
      expect(r.stderr).toContain(`job ${id}: field "limits" is missing`);
      expect(r.stderr).toContain('ledger.json.bak');
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(readFileSync(path, 'utf8')).toBe(edited);

    writeFileSync(path, JSON.stringify({ ...data, jobs: [good] }));
    writeFileSync(
      archive,
      JSON.stringify({ ...good, id: 'arch0001' }) +
        '\n' +
        JSON.stringify({ ...good, id: 'arch0002', state: 'exploded' }) +
        '\n',
    );
    const r = await gpuq(h, ['list', '--all']);
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toContain(
      `${archive} is damaged at line 2 (job arch0002: field "state" has a value of the wrong kind ("exploded"))`,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('bad input: exit 2, one line, nothing recorded', () => {
  it('refuses each bad input without recording anything', async () => {
    const h = await home();
    const dir = await mkdtemp(join(tmpdir(), 'gpuq-bad-'));
    const ok = join(dir, 'ok.py');
    writeFileSync(ok, 'print(1)\n');
    writeFileSync(join(dir, 'empty.py'), '');
    writeFileSync(join(dir, 'bin.py'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]));
    writeFileSync(join(dir, 'big.py'), Buffer.alloc(11 * 1024 * 1024, 0x23));
    mkdirSync(join(dir, 'adir'));
    const cases: [string[], RegExp][] = [
      [['submit', join(dir, 'missing.py')], /missing\.py/],
      [['submit', join(dir, 'adir')], /folder|directory/],
      [['submit', join(dir, 'empty.py')], /empty/],
      [['submit', join(dir, 'bin.py')], /binary/],
      [['submit', join(dir, 'big.py')], /10 MiB|too large/],
      [['submit', ok, '--timeout', 'soon'], /--timeout/],
      [['submit', ok, '--timeout', '0s'], /--timeout/],
      [['submit', ok, '--timeout', '-5m'], /--timeout/],
      [['submit', ok, '--memory', '0'], /--memory/],
      [['submit', ok, '--memory', '-1g'], /--memory/],
      [['submit', ok, '--memory', '12 parsecs'], /--memory/],
      [['submit', ok, '--pids', '-3'], /--pids/],
      [['submit', ok, '--node', 'nowhere'], /nowhere/],
      [['submit', ok, '--env', 'NOEQUALS'], /--env/],
      [['submit', ok, '--frobnicate'], /frobnicate/],
      [['frobnicate'], /frobnicate/],
    ];
    for (const [args, message] of cases) {
      const r = await gpuq(h, args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr, args.join(' ')).not.toMatch(/\n\s+at /);
      expect(r.stdout, args.join(' ')).toBe('');
    }
    const list = await gpuqJson<JobJson[]>(h, ['list', '--all']);
    expect(list).toEqual([]);
  });

  it('the size limit is configurable', async () => {
    const h = await home({ defaults: { maxFileSize: '1k' } });
    const prog = await writeProgram('two-k.py', `# ${'x'.repeat(2048)}\nprint(1)\n`);
    const r = await gpuq(h, ['submit', prog]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/1 KiB|maxFileSize/);
  });

  it('refuses a bad config naming the file and the field', async () => {
    const h = await home({ defaults: { timeout: 'forever' } });
    const r = await gpuq(h, ['list']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(join(h.dir, 'config.json'));
    expect(r.stderr).toMatch(/timeout/);
  });

  it('an unknown id exits 4; an ambiguous prefix exits 4 listing the candidates', async () => {
    const h = await home();
    const prog = await writeProgram('ok.py', 'print(1)\n');
    expect((await gpuq(h, ['submit', prog, '--wait', '-q'])).code).toBe(0);
    const path = join(h.dir, 'ledger.json');
    const data = JSON.parse(readFileSync(path, 'utf8')) as { jobs: JobJson[] };
    const base = data.jobs[0] as JobJson;
    data.jobs.push({ ...base, id: 'zz000001' }, { ...base, id: 'zz000002' });
    writeFileSync(path, JSON.stringify(data));
    const unknown = await gpuq(h, ['show', 'qqqqqqqq']);
    expect(unknown.code).toBe(4);
    const amb = await gpuq(h, ['show', 'zz']);
    expect(amb.code).toBe(4);
    expect(amb.stderr).toContain('zz000001');
    expect(amb.stderr).toContain('zz000002');
    expect((await gpuq(h, ['wait', 'zz'])).code).toBe(4);
    expect((await gpuq(h, ['show', 'zz000002'])).code).toBe(0);
  });
});

describe('installation', () => {
  it('npx gpuq works from the repository root', () => {
    const out = execFileSync('npx', ['--no-install', 'gpuq', '--version'], { cwd: REPO, encoding: 'utf8' });
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
