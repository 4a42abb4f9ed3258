/**
 * The daily chores through the built CLI, with real jobs: `rerun` runs the program as it was
 * submitted (not the file as it is now) with the old options under overrides; `prune` removes
 * finished jobs' folders on the local node and over SSH (a real sshd, a job that left its folder
 * hostile), never a running one, lists without removing under --dry-run, and reports a node it
 * cannot reach; `stats` counts real verdicts. The tests run at once, each in its own home.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stats } from '../../src/core/stats.js';
import type { Job } from '../../src/core/types.js';
import type { PruneReport } from '../../src/services/prune.js';
import { gpuq, type Home, makeHome, userIds } from '../helpers/cli.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

let sshd: Sshd;
const homes: Home[] = [];
/** Folders this file made; removed after all tests (helpers that clean up at a test's end cannot tell concurrent tests apart). */
const temps: string[] = [];

beforeAll(async () => {
  sshd = await startSshd({ alias: 'chores-node' });
});
afterAll(async () => {
  await Promise.all(homes.map((h) => h.cleanup()));
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
  await sshd?.cleanup();
});

async function home(config?: unknown, env: NodeJS.ProcessEnv = {}): Promise<Home> {
  const h = await makeHome(config, env, { autoCleanup: false });
  homes.push(h);
  return h;
}

/** Runs gpuq and parses its JSON stdout, failing with its stderr when it exits otherwise than `code`. */
async function json<T>(h: Home, args: string[], code = 0): Promise<T> {
  const r = await gpuq(h, [...args, '--json']);
  expect(r.code, `gpuq ${args.join(' ')}: ${r.stderr}`).toBe(code);
  return JSON.parse(r.stdout) as T;
}

/**
 * A gate file a job waits on (at most 60 s) until the test opens it. makeGate's clean-up runs
 * when "the current test" ends, which concurrent tests cannot tell apart: this one is opened by
 * the test that made it and removed after all. Its folder is 0755, so the SSH node's user sees it.
 */
async function gate(): Promise<{ pyDef: string; open(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'gpuq-gate-'));
  temps.push(dir);
  await chmod(dir, 0o755);
  const path = join(dir, 'open');
  return {
    pyDef:
      `def gate_wait():\n    import os, time\n    end = time.time() + 60\n` +
      `    while not os.path.exists(${JSON.stringify(path)}) and time.time() < end:\n        time.sleep(0.05)\n`,
    open: () => writeFile(path, ''),
  };
}

/** Writes a program into a fresh folder (readable by the SSH node's user, too) and returns its path. */
async function writeProgram(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gpuq-prog-'));
  temps.push(dir);
  await writeFile(join(dir, name), text);
  return join(dir, name);
}

const ledgerOf = async (h: Home) =>
  JSON.parse(await readFile(join(h.dir, 'ledger.json'), 'utf8')) as { version: 1; jobs: Job[] };
const writeLedger = (h: Home, data: { version: 1; jobs: Job[] }) =>
  writeFile(join(h.dir, 'ledger.json'), JSON.stringify(data), { mode: 0o600 });

describe.concurrent('gpuq rerun, prune, stats', () => {
  it('rerun runs the content as submitted with the same options; options given override them', async () => {
    const h = await home();
    const prog = await writeProgram(
      'run.py',
      'import os, sys\nprint("version 1", os.environ.get("A"), os.environ.get("B"), sys.argv[1:])\n',
    );
    const first = await json<Job>(h, [
      'submit',
      prog,
      '--wait',
      '--timeout',
      '5m',
      '--memory',
      '1g',
      '--env',
      'A=1',
      '--arg',
      'x',
      '--name',
      'my run',
      '--priority',
      '5',
    ]);
    expect(first.verdict?.class).toBe('succeeded');
    // The file changes after the submit: a rerun runs what was submitted (the new one would fail).
    await writeFile(prog, 'raise SystemExit(3)\n');
    // Overrides: one limit, one more variable, the arguments; the rest (name, priority, the other
    // limits, the kept copy) stays the first job's. --follow streams the program's output (stdout
    // alone) and ends with its verdict's code. A bad override is refused as submit refuses it,
    // before anything is recorded.
    const [followed, bad] = await Promise.all([
      gpuq(h, ['rerun', first.id.slice(0, 5), '--timeout', '2h', '--env', 'B=2', '--arg', 'y', '--follow']),
      gpuq(h, ['rerun', first.id, '--memory', '500']),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--memory "500" has no unit/);
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stdout).toBe("version 1 1 2 ['y']\n");
    const overId = /gpuq: (\S+) is a rerun of/.exec(followed.stderr)?.[1] as string;
    expect(followed.stderr).toMatch(/succeeded/);
    expect(overId).not.toBe(first.id);
    const over = (await ledgerOf(h)).jobs.find((j) => j.id === overId) as Job;
    expect(over.verdict?.class, over.verdict?.summary).toBe('succeeded');
    expect(first.limits.timeoutS).toBe(300);
    expect(over.limits).toEqual({ ...first.limits, timeoutS: 7200 });
    expect(over).toMatchObject({
      env: { A: '1', B: '2' },
      args: ['y'],
      name: 'my run',
      priority: 5,
      file: first.file,
      kept: first.kept,
    });

    // A job from before programs were kept, and a kept copy that is gone: clear refusals, exit 2.
    const ledger = await ledgerOf(h);
    const old = { ...ledger.jobs[0], id: 'zzold000' } as Job;
    delete (old as { kept?: unknown }).kept;
    // and one submitted with --include, whose included files are not kept
    const inc = { ...first, id: 'zzinc000', kept: { ...first.kept, included: 1 } } as Job;
    await writeLedger(h, { ...ledger, jobs: [...ledger.jobs, old, inc] });
    const [noCopy, noInclude] = await Promise.all([gpuq(h, ['rerun', 'zzold000']), gpuq(h, ['rerun', 'zzinc000'])]);
    expect(noCopy.code).toBe(2);
    expect(noCopy.stderr).toMatch(/submitted before gpuq kept a copy/);
    expect(noCopy.stderr).toContain(`gpuq submit ${first.file}`);
    expect(noInclude.code).toBe(2);
    expect(noInclude.stderr).toMatch(/submitted with --include; gpuq keeps the program, not the included files/);
    await unlink(join(h.dir, 'programs', first.kept?.sha256 as string));
    const gone = await gpuq(h, ['rerun', first.id]);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/kept copy of .*run\.py .* is gone/);
    expect((await ledgerOf(h)).jobs).toHaveLength(4);
  });

  it('stats counts real verdicts; prune on the local node: --dry-run removes nothing, --keep and --older-than, never a running job', async () => {
    // One set of jobs serves both: three finished ones of three verdicts (each leaves 100 kB in its
    // folder) and one held running.
    const h = await home();
    const g = await gate();
    const jobsDir = join(h.dir, 'nodes', 'local', 'jobs');
    const out = 'open("out.txt", "w").write("x" * 100000)\n';
    const [ok, fail, slow, held] = await Promise.all([
      writeProgram('ok.py', `${out}print("fine")\n`),
      writeProgram('fail.py', `${out}raise SystemExit(3)\n`),
      writeProgram('slow.py', `${out}import time\ntime.sleep(60)\n`),
      writeProgram('held.py', `${g.pyDef}gate_wait()\n`),
    ]);
    try {
      const [running, ...runs] = await Promise.all([
        json<Job>(h, ['submit', held]),
        json<Job>(h, ['submit', ok, '--wait'], 0),
        json<Job>(h, ['submit', fail, '--wait'], 10),
        json<Job>(h, ['submit', slow, '--wait', '--timeout', '1s', '--grace', '1s'], 11),
      ]);
      expect(runs.map((j) => j.verdict?.class)).toEqual(['succeeded', 'failed', 'timeout']);

      // stats: the three verdicts, the running job counted as active, durations of the done ones.
      const [s, human, badSince] = await Promise.all([
        json<Stats>(h, ['stats', '--since', '1h']),
        gpuq(h, ['stats']),
        gpuq(h, ['stats', '--since', '7']),
      ]);
      expect(s.jobs).toBe(4);
      expect(s.done).toBe(3);
      expect(Object.values(s.active).reduce((n, k) => n + k, 0)).toBe(1);
      expect(s.since).not.toBeNull();
      expect(s.verdicts.map((v) => [v.class, v.count])).toEqual([
        ['succeeded', 1],
        ['failed', 1],
        ['timeout', 1],
      ]);
      expect(s.nodes).toMatchObject([
        { name: 'local', jobs: 4, done: 3, byClass: { succeeded: 1, failed: 1, timeout: 1 } },
      ]);
      expect(s.competitions).toMatchObject([{ name: null, jobs: 4 }]);
      expect(s.durations.count).toBe(3);
      // the timed-out job ran at least its 1 s limit, and is the longest
      expect(s.durations.maxMs).toBeGreaterThanOrEqual(1000);
      expect(s.durations.p90Ms).toBe(s.durations.maxMs);
      expect(s.durations.p50Ms).toBeLessThanOrEqual(s.durations.maxMs as number);
      expect(badSince.code).toBe(2);
      expect(badSince.stderr).toMatch(/--since "7" has no unit/);
      expect(human.code, human.stderr).toBe(0);
      expect(human.stdout).toMatch(/^4 jobs \(all time\): 3 done, 1 \w+$/m);
      expect(human.stdout).toMatch(/^failed +1 +-?/m);
      expect(human.stdout).toMatch(/^local +4 +3 +1 +2 /m);
      expect(human.stdout).toMatch(/^durations of 3 finished jobs: p50 \S+, p90 \S+, max \S+$/m);

      // prune's order: the latest end first (ties by id)
      const done = [...runs].sort(
        (a, b) => Date.parse(b.endedAt as string) - Date.parse(a.endedAt as string) || (a.id < b.id ? -1 : 1),
      );
      const [newest, middle, oldest] = done as [Job, Job, Job];

      const dry = await json<PruneReport>(h, ['prune', '--keep', '0', '--dry-run']);
      expect(dry.dryRun).toBe(true);
      expect(dry.pruned.map((p) => p.id)).toEqual([newest.id, middle.id, oldest.id]);
      for (const p of dry.pruned) expect(p.bytes).toBeGreaterThan(100000);
      expect(dry.freedBytes).toBe(dry.pruned.reduce((n, p) => n + p.bytes, 0));
      expect(dry.active).toBe(1);
      expect((await readdir(jobsDir)).sort()).toEqual([running.id, ...done.map((j) => j.id)].sort());
      expect((await ledgerOf(h)).jobs).toHaveLength(4);

      const keep = await gpuq(h, ['prune', '--keep', '1']);
      expect(keep.code, keep.stderr).toBe(0);
      expect(keep.stdout).toMatch(new RegExp(`^removed ${middle.id} .*\\n^removed ${oldest.id} `, 'm'));
      expect(keep.stdout).toMatch(/^pruned 2 jobs, freed \d/m);
      expect(keep.stderr).toMatch(/1 job not finished was left alone/);
      expect((await readdir(jobsDir)).sort()).toEqual([running.id, newest.id].sort());
      expect((await ledgerOf(h)).jobs.map((j) => j.id).sort()).toEqual([running.id, newest.id].sort());

      const none = await gpuq(h, ['prune', '--older-than', '1h']);
      expect(none.stdout).toBe('nothing to prune\n');
      const old = await json<PruneReport>(h, ['prune', '--older-than', '1ms']);
      expect(old.pruned.map((p) => p.id)).toEqual([newest.id]);
      expect(await readdir(jobsDir)).toEqual([running.id]);

      // The ledger says done, but the supervisor still holds the folder: the node refuses.
      const ledger = await ledgerOf(h);
      await writeLedger(h, {
        ...ledger,
        jobs: ledger.jobs.map((j) => (j.id === running.id ? { ...j, state: 'done', verdict: newest.verdict } : j)),
      });
      const live = await gpuq(h, ['prune', '--keep', '0']);
      expect(live.code, live.stderr).toBe(0);
      expect(live.stderr).toContain(`kept job ${running.id} (node local): its supervisor still runs.`);
      expect(live.stdout).toBe('nothing to prune\n');
      expect(await readdir(jobsDir)).toEqual([running.id]);
      expect(existsSync(join(jobsDir, running.id, 'work', 'held.py'))).toBe(true);
    } finally {
      await g.open();
    }
  }, 240_000);

  it('prune over SSH removes a hostile folder (unwritable folders, links out) and nothing outside it', async () => {
    const h = await home(
      { nodes: { s: sshd.configEntry({ connectTimeout: '30s' }) } },
      { GPUQ_SSH_CONFIG: sshd.sshConfigPath },
    );
    await writeFile(join(h.dir, 'known_hosts'), `${sshd.knownHostsLine('right')}\n`);
    // What a job's links point at: the node user's own files, which a followed link would lose.
    const victim = await mkdtemp(join(tmpdir(), 'gpuq-victim-'));
    temps.push(victim);
    await writeFile(join(victim, 'keep.txt'), 'keep');
    const ids = userIds(sshd.user);
    if (ids) {
      await chown(victim, ids.uid, ids.gid);
      await chown(join(victim, 'keep.txt'), ids.uid, ids.gid);
    }
    await chmod(victim, 0o755);
    const g = await gate();
    try {
      const hostile = await writeProgram(
        'hostile.py',
        'import os\n' +
          'os.makedirs("locked/inner/deep")\nopen("locked/inner/deep/f", "w").write("x")\n' +
          'open("locked/inner/f", "w").write("x" * 50000)\n' +
          'os.chmod("locked/inner/deep", 0)\nos.chmod("locked/inner", 0)\nos.chmod("locked", 0o500)\n' +
          `os.symlink(${JSON.stringify(victim)}, "out")\n` +
          `os.symlink(${JSON.stringify(join(victim, 'keep.txt'))}, "outfile")\n` +
          'os.chmod(".", 0o500)\n',
      );
      const held = await writeProgram('held.py', `${g.pyDef}gate_wait()\n`);
      const [bad, running] = await Promise.all([
        json<Job>(h, ['submit', hostile, '--wait']),
        json<Job>(h, ['submit', held]),
      ]);
      expect(bad.verdict?.class, bad.verdict?.summary).toBe('succeeded');
      const folder = bad.remote?.dir as string;
      expect(execFileSync('ls', ['-l', join(folder, 'work')], { encoding: 'utf8' })).toMatch(/out -> /);

      const r = await json<PruneReport>(h, ['prune', '--keep', '0']);
      expect(r.pruned.map((p) => [p.id, p.folder])).toEqual([[bad.id, 'removed']]);
      expect(r.pruned[0]?.bytes).toBeGreaterThan(50000);
      expect(r.kept).toEqual([]);
      expect(existsSync(folder)).toBe(false);
      expect(await readFile(join(victim, 'keep.txt'), 'utf8')).toBe('keep');
      expect(existsSync(join(running.remote?.dir as string, 'job.lock'))).toBe(true);

      // A node that cannot be reached: its job keeps its entry, is named, exit 3.
      const ledger = await ledgerOf(h);
      const lost = { ...bad, id: 'zzlost00', node: 'gone' } as Job;
      await writeFile(
        join(h.dir, 'config.json'),
        JSON.stringify({
          nodes: {
            s: sshd.configEntry({ connectTimeout: '30s' }),
            gone: sshd.configEntry({ port: 1, connectTimeout: '10s' }),
          },
        }),
      );
      await writeLedger(h, { ...ledger, jobs: [...ledger.jobs, lost] });
      const unreachable = await gpuq(h, ['prune', '--keep', '0']);
      expect(unreachable.code, unreachable.stderr).toBe(3);
      expect(unreachable.stderr).toMatch(/kept job zzlost00 \(node gone\): node gone is unreachable/);
      expect((await ledgerOf(h)).jobs.map((j) => j.id).sort()).toEqual([running.id, 'zzlost00'].sort());
    } finally {
      await g.open();
    }
  });
});
