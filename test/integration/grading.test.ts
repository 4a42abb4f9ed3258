/**
 * The grading step end to end (issue 13), real processes on the embedded local node: one home
 * whose config holds a competition per grader behaviour, the jobs submitted concurrently with
 * `submit --wait --json`. Blame is split as the contract says: the submitter's faults are
 * `rejected` (19), the grader's `grading_failed` (18), and `gpuq grade` grades again after a fix.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { need } from '../helpers/capability.js';
import { type Gate, gpuq, gpuqJson, type Home, makeGate, makeHome, SYSTEM_PYTHON, until } from '../helpers/cli.js';
import { ensureTestUser, TEST_USER } from '../helpers/hostile.js';

const asUser = need(ensureTestUser(), `root, to create the user ${TEST_USER} and run gpuq as it`);

let root: string;
let home: Home;
/** The same competitions, gpuq run as the unprivileged TEST_USER: the userns boundary. */
let userHome: Home | null = null;
let gate: Gate;
const PY = SYSTEM_PYTHON;

/** A grader to the contract: score = number of lines; metric `first` = the first line. */
const GOOD = `import json, sys, os
sub, ans, fb = sys.argv[1:4]
assert os.path.isfile(os.path.join(ans, "truth.txt"))
lines = open(sub, encoding="utf-8", errors="replace").read().splitlines()
open(os.path.join(fb, "results.jsonl"), "w").write(json.dumps({"score": len(lines), "first": lines[0] if lines else ""}) + "\\n")
print("graded", len(lines))
sys.exit(42)
`;

const GRADERS: Record<string, string> = {
  good: GOOD,
  crash: 'import sys\nprint("grader exploding", file=sys.stderr)\nraise KeyError("columns")\n',
  zero: 'import sys\nsys.exit(0)\n',
  loop: 'import time\nwhile True:\n    time.sleep(1)\n',
  fat: 'import sys, time\nblock = bytearray(250 << 20)\nfor i in range(0, len(block), 4096):\n    block[i] = 1\ntime.sleep(30)\n',
  malformed:
    'import os, sys\nfb = sys.argv[3]\nopen(os.path.join(fb, "results.jsonl"), "w").write(\'{"score": 1}\\n{oops\\n\')\nsys.exit(42)\n',
  invalid:
    'import os, sys\nfb = sys.argv[3]\nopen(os.path.join(fb, "message.txt"), "w").write("row 2: expected 3 columns\\n\\u001b[31m")\nsys.exit(43)\n',
  fixable: 'import sys\nprint("not yet written", file=sys.stderr)\nsys.exit(3)\n',
};

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'gpuq-grading-'));
  await chmod(root, 0o755);
  const data = join(root, 'data');
  const answers = join(root, 'answers');
  await mkdir(data, { mode: 0o755 });
  // readable by everyone: the boundary, not the permissions, must keep the answers from the program
  await mkdir(answers, { mode: 0o755 });
  await writeFile(join(data, 'train.csv'), 'x,y\n1,2\n', { mode: 0o644 });
  await writeFile(join(answers, 'truth.txt'), 'secret\n', { mode: 0o644 });
  await writeFile(join(root, 'outside.txt'), 'a file outside the job folder\n', { mode: 0o644 });
  gate = await makeGate({ autoCleanup: false });
  const competitions: Record<string, unknown> = {};
  for (const [name, source] of Object.entries({
    ...GRADERS,
    gated: `${gate.pyDef}gate_wait()\n${GOOD}`,
  })) {
    await writeFile(join(root, `${name}.py`), source);
    competitions[name] = {
      data,
      answers,
      grader: [PY, join(root, `${name}.py`)],
      graderLimits: { timeout: name === 'loop' ? '2s' : '60s', memory: '100m' },
      maxSubmissionSize: '1k',
      requireBoundary: false,
      metric: 'lines',
    };
  }
  home = await makeHome({ competitions }, {}, { autoCleanup: false });
  if (asUser.run && ensureTestUser())
    userHome = await makeHome({ competitions }, {}, { runAs: TEST_USER, autoCleanup: false });
});

afterAll(async () => {
  await gate?.cleanup();
  await home?.cleanup();
  await userHome?.cleanup();
  if (root) await rm(root, { recursive: true, force: true });
});

/** `gpuq submit PROGRAM --competition C --wait --json`: the exit code and the job. */
async function submit(competition: string, source: string, h: Home = home): Promise<{ code: number | null; job: Job }> {
  const dir = await mkdtemp(join(root, 'prog-'));
  await chmod(dir, 0o755);
  const prog = join(dir, 'solution.py');
  await writeFile(prog, source, { mode: 0o644 });
  const r = await gpuq(h, ['submit', prog, '--competition', competition, '--wait', '--json']);
  try {
    return { code: r.code, job: JSON.parse(r.stdout) as Job };
  } catch {
    throw new Error(`submit to ${competition} exited ${r.code} without a job: ${r.stderr}`);
  }
}

const WRITES = 'open("submission.csv", "w").write("a\\nb\\nc\\n")\n';

function gradingDir(job: Job, n = 1): string {
  return join(job.remote?.dir as string, 'gradings', String(n));
}

/** A program that reports what it can do with $GPUQ_DATA and the answers, in its submission. */
function sandbox(): string {
  return `import os
d = os.environ["GPUQ_DATA"]
ok = open(os.path.join(d, "train.csv")).read().startswith("x,y")
try:
    open(os.path.join(d, "new.txt"), "w").write("x")
    writable = "yes"
except OSError:
    writable = "no"
answers = ${JSON.stringify(join(root, 'answers', 'truth.txt'))}
try:
    open(answers).read()
    seen = "yes"
except OSError:
    seen = "no"
open("submission.csv", "w").write("data=%s writable=%s answers=%s\\r\\nb\\r\\n" % (ok, writable, seen))
`;
}

describe('grading', () => {
  it.concurrent('a solution that scores: score and metrics in the job and the verdict; $GPUQ_DATA read-only, answers unseen', async () => {
    const { code, job } = await submit('good', sandbox());
    const show = JSON.stringify(job.verdict, null, 2);
    expect(code, show).toBe(0);
    expect(job.verdict).toMatchObject({ class: 'succeeded', score: 2 });
    expect(job.score).toBe(2);
    const first = String(job.metrics?.first);
    expect(first).toMatch(/^data=True writable=\w+ answers=no$/);
    // behind a boundary the data folder is mounted read-only for the program
    if (job.remote?.boundary !== 'none') expect(first).toContain('writable=no');
    const g = job.gradings?.[0];
    expect(g).toMatchObject({ class: 'succeeded', graderExit: 42, submission: { crlf: true, encoding: 'utf-8' } });
    expect(g?.dataFingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(g?.answersFingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await readFile(join(gradingDir(job), 'stdout.log'), 'utf8')).toContain('graded 2');
  });

  it.runIf(asUser.run).concurrent(`as ${TEST_USER} (userns): $GPUQ_DATA read-only, the answers covered`, async () => {
    asUser.check();
    const { code, job } = await submit('good', sandbox(), userHome as Home);
    expect(code, JSON.stringify(job.verdict)).toBe(0);
    expect(job.remote?.boundary).toBe('userns');
    expect(job.metrics?.first).toBe('data=True writable=no answers=no');
    expect(job.score).toBe(2);
  });

  // The submission check's refusals: four programs in one `submit A B C D --wait` (one CLI run).
  let refused: Promise<{ code: number | null; jobs: Record<string, Job> }> | null = null;
  function refusals(): Promise<{ code: number | null; jobs: Record<string, Job> }> {
    refused ??= (async () => {
      const progs: Record<string, string> = {
        missing: 'print("forgot")\n',
        symlink: `import os\nos.symlink(${JSON.stringify(join(root, 'outside.txt'))}, "submission.csv")\n`,
        folder: 'import os\nos.mkdir("submission.csv")\n',
        huge: 'open("submission.csv", "w").write("x" * 5000)\n',
      };
      const dir = await mkdtemp(join(root, 'prog-'));
      await chmod(dir, 0o755);
      const paths: string[] = [];
      for (const [name, source] of Object.entries(progs)) {
        paths.push(join(dir, `${name}.py`));
        await writeFile(join(dir, `${name}.py`), source, { mode: 0o644 });
      }
      const r = await gpuq(home, ['submit', ...paths, '--competition', 'good', '--wait', '--json']);
      let jobs: Job[];
      try {
        jobs = JSON.parse(r.stdout) as Job[];
      } catch {
        throw new Error(`submit of the refused submissions exited ${r.code}: ${r.stderr}`);
      }
      return { code: r.code, jobs: Object.fromEntries(Object.keys(progs).map((k, i) => [k, jobs[i] as Job])) };
    })();
    return refused;
  }

  it.concurrent('no submission file: rejected, submission_missing, exit 19', async () => {
    const { code, jobs } = await refusals();
    const job = jobs.missing as Job;
    expect(code).toBe(19);
    expect(job.verdict).toMatchObject({ class: 'rejected', cause: 'submission_missing' });
    expect(job.score ?? null).toBeNull();
  });

  it.concurrent('a symlink submission pointing outside the job folder: refused, nothing read through it', async () => {
    const job = (await refusals()).jobs.symlink as Job;
    expect(job.verdict).toMatchObject({ class: 'rejected', cause: 'submission_invalid' });
    expect(job.gradings?.[0]?.message).toMatch(/symbolic link/);
    // no copy was made and the grader never ran
    expect(existsSync(join(gradingDir(job), 'submission'))).toBe(false);
    expect(existsSync(join(gradingDir(job), 'stdout.log'))).toBe(false);
  });

  it.concurrent('a folder named submission.csv: refused', async () => {
    const job = (await refusals()).jobs.folder as Job;
    expect(job.verdict).toMatchObject({ class: 'rejected', cause: 'submission_invalid' });
    expect(job.gradings?.[0]?.message).toMatch(/folder/);
  });

  it.concurrent('a submission over the size cap: refused', async () => {
    const job = (await refusals()).jobs.huge as Job;
    expect(job.verdict).toMatchObject({ class: 'rejected', cause: 'submission_invalid' });
    expect(job.gradings?.[0]?.message).toMatch(/over the competition's cap/);
  });

  it.concurrent('exit 43 with a message: rejected with the message, printable', async () => {
    const { code, job } = await submit('invalid', WRITES);
    expect(code).toBe(19);
    expect(job.verdict).toMatchObject({ class: 'rejected', cause: 'submission_invalid' });
    expect(job.gradings?.[0]?.message).toBe('row 2: expected 3 columns');
  });

  const failures: Array<[string, string, RegExp]> = [
    ['crash', 'grader_error', /exited 1/],
    ['zero', 'grader_error', /exited 0/],
    ['loop', 'grader_timeout', /time limit/],
    ['fat', 'grader_oom', /memory/],
    ['malformed', 'bad_results', /line 2/],
  ];
  for (const [name, cause, message] of failures) {
    it.concurrent(`a grader that fails (${name}): grading_failed ${cause}, exit 18, not the submission's fault`, async () => {
      const { code, job } = await submit(name, WRITES);
      const show = JSON.stringify(job.verdict, null, 2);
      expect(code, show).toBe(18);
      expect(job.verdict, show).toMatchObject({ class: 'grading_failed', cause });
      expect(job.verdict?.summary).toContain("not your submission's fault");
      expect(job.gradings?.[0]?.message).toMatch(message);
      if (name === 'crash') expect(job.verdict?.evidence.join('\n')).toMatch(/grader stderr: KeyError: 'columns'/);
    });
  }

  it.concurrent('state grading is visible while the grader runs', async () => {
    const dir = await mkdtemp(join(root, 'prog-'));
    await chmod(dir, 0o755);
    await writeFile(join(dir, 'solution.py'), WRITES, { mode: 0o644 });
    const sub = await gpuq(home, ['submit', join(dir, 'solution.py'), '--competition', 'gated', '-q']);
    expect(sub.code, sub.stderr).toBe(0);
    const id = sub.stdout.trim();
    // the supervisor's own record first (no CLI call per look), then what a command reports
    const status = join(home.dir, 'nodes', 'local', 'jobs', id, 'status.json');
    const grading = await until(
      async () => (await readFile(status, 'utf8').catch(() => '')).includes('"state":"grading"'),
      60_000,
    );
    const listed = await gpuqJson<Job>(home, ['show', id]);
    const list = await gpuq(home, ['list', '--all']);
    await gate.open();
    const waited = await gpuq(home, ['wait', id]);
    expect(grading).toBe(true);
    expect(listed?.state).toBe('grading');
    expect(list.stdout).toMatch(new RegExp(`${id} .* grading +\\S+ +\\S+ +grading`));
    expect(waited.code, waited.stderr).toBe(0);
    expect(waited.stdout).toMatch(/succeeded \(exit 0\): Graded: lines 3\./);
  });

  it.concurrent('regrade after a grader fix: both gradings kept, the newest decides', async () => {
    const { code, job } = await submit('fixable', WRITES);
    expect(code).toBe(18);
    await writeFile(join(root, 'fixable.py'), GOOD);
    const r = await gpuq(home, ['grade', job.id, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [again] = JSON.parse(r.stdout) as Job[];
    expect(again?.gradings?.map((g) => g.class)).toEqual(['grading_failed', 'succeeded']);
    expect(again?.score).toBe(3);
    expect(again?.verdict).toMatchObject({ class: 'succeeded', score: 3 });
    expect(existsSync(join(gradingDir(job, 2), 'feedback', 'results.jsonl'))).toBe(true);
    // a job whose program failed is not graded, and cannot be
    const failed = await submit('good', 'raise SystemExit(3)\n');
    expect(failed.code).toBe(10);
    expect(failed.job.gradings ?? []).toEqual([]);
    const no = await gpuq(home, ['grade', failed.job.id]);
    expect(no.code).toBe(2);
    expect(no.stderr).toMatch(/did not succeed/);
  });
});
