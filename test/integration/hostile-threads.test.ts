import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { gpuq, makeHome, type Home, NO_BOUNDARY_CONFIG, until } from '../helpers/cli.js';
import {
  anyThreadLive,
  ensureTestUser,
  expectVerdict,
  type Finished,
  finished,
  HOSTILE,
  pidFile,
  runHostile,
  TEST_USER,
} from '../helpers/hostile.js';

const canRunAsUser = ensureTestUser();
const homes: Home[] = [];
// The lingerer is found by the pid it wrote, not the node's inside the userns boundary's pid namespace.
async function home(runAs?: string): Promise<Home> {
  const h = await makeHome(NO_BOUNDARY_CONFIG, {}, { ...(runAs === undefined ? {} : { runAs }), autoCleanup: false });
  homes.push(h);
  return h;
}
// The lingerer copies (readable by the unprivileged user), removed after the file's tests.
const copies = mkdtempSync(join(tmpdir(), 'gpuq-lingerers-'));
chmodSync(copies, 0o755);
afterAll(async () => {
  await Promise.all(homes.splice(0).map((h) => h.cleanup()));
  rmSync(copies, { recursive: true, force: true });
});

const FIXTURE = 'main_thread_exit.py';
const HOLD = ['--arg', 'hold', '--arg', '256', '--arg', '20', '--memory', '100m', '--timeout', '60s'];

const users: { who: string; runAs?: string; memoryCause: string | undefined }[] = [
  // as root the memory cgroup may catch it first (cause `cgroup`), else the memory watch
  { who: 'as the test runner', memoryCause: undefined },
  ...(canRunAsUser
    ? [{ who: `as the unprivileged user ${TEST_USER}`, runAs: TEST_USER, memoryCause: 'memory_watch' }]
    : []),
];

describe.concurrent.each(users)('a job whose main thread has exited, $who', ({ runAs, memoryCause }) => {
  it('holding 256 MiB under --memory 100m is oom, 12', async () => {
    const f = await runHostile(await home(runAs), FIXTURE, HOLD);
    expect(f.stdoutLog).toContain('main thread state: Z');
    expectVerdict(f, 'oom', memoryCause, 12);
    if (memoryCause === 'memory_watch') {
      expect(f.monitor?.memoryWatchFired).toBe(true);
      expect(Number(f.monitor?.memoryWatchRssBytes)).toBeGreaterThan(100 << 20);
      expect(f.status.limitFired).toBe('memory');
    }
    expect(f.stdoutLog).not.toContain('released');
  }, 90_000);

  // Both lingerers in one `submit A B --wait` (one gpuq run; both succeed, so its exit code is
  // each job's): the fixture twice, its arguments written into each copy (the copy re-executes
  // itself with arguments of its own for --clear-env, so they are set only when none were given).
  let lingerers: Promise<Finished[]> | undefined;
  const bothLingerers = () => {
    lingerers ??= (async () => {
      const source = readFileSync(join(HOSTILE, FIXTURE), 'utf8');
      const progs = [['linger'], ['linger', '--clear-env']].map((args) => {
        const path = join(copies, `${runAs ?? 'runner'}-linger${args.length}.py`);
        const text = `import sys\nif len(sys.argv) == 1:\n    sys.argv[1:] = ${JSON.stringify(args)}\n${source}`;
        writeFileSync(path, text, { mode: 0o644 });
        return path;
      });
      const r = await gpuq(await home(runAs), ['submit', ...progs, '--wait', '--json', '--timeout', '60s']);
      let jobs: Job[];
      try {
        jobs = JSON.parse(r.stdout) as Job[];
      } catch {
        throw new Error(`submit exited ${r.code} without jobs: ${r.stderr}`);
      }
      return progs.map((p) => {
        const job = jobs.find((j) => j.file === p);
        if (job === undefined) throw new Error(`no job for ${p}: ${r.stderr}`);
        return finished(r.code, r.stderr, job);
      });
    })();
    return lingerers;
  };

  it.each([
    [0, []],
    [1, ['--clear-env']],
  ])(
    'a setsid + double-forked lingerer (%i) %j does not outlive the verdict',
    async (i: number) => {
      const f = (await bothLingerers())[i] as Finished;
      expect(f.stdoutLog).toMatch(/lingerer \d+: main thread state Z/);
      expectVerdict(f, 'succeeded', undefined, 0);
      const pid = pidFile(f.job, 'lingerer.pid');
      const gone = await until(() => !anyThreadLive(pid), 3000);
      if (!gone) process.kill(pid, 'SIGKILL'); // leave no lingerer behind a failure
      expect(gone, `pid ${pid} outlived the verdict`).toBe(true);
      expect(Number(f.status.leftovers)).toBeGreaterThanOrEqual(1);
    },
    90_000,
  );
});
