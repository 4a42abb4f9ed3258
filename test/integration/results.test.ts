/**
 * `gpuq results` against real gradings (the grading step of templates/grade.py on the local
 * node): a job's score, metrics, message and fingerprints; the leaderboard in both directions of
 * the metric, with rejected gradings under --all and jobs graded before the data set changed
 * marked not comparable; `--out` with a grader that leaves hostile names and links out of its
 * feedback folder (nothing followed, nothing written outside DIR, no overwrite without --force).
 * One home; the jobs are submitted a few files per CLI call, at once.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BoardRow } from '../../src/core/leaderboard.js';
import type { Job } from '../../src/core/types.js';
import type { JobResults } from '../../src/services/results.js';
import { gpuq, type Home, makeHome, SYSTEM_PYTHON } from '../helpers/cli.js';

let work: string;
let home: Home;
const SECRET = 'submitter-secret-5e2a';

/** The grader of the contract: the score is the submission's first line; "bad" is invalid (exit 43). */
function graderSource(secretFile: string): string {
  return [
    'import json, os, sys',
    'sub, answers, fb = sys.argv[1:4]',
    'first = open(sub).read().split("\\n")[0].strip()',
    'if first == "bad":',
    '    open(os.path.join(fb, "message.txt"), "w").write("line 1 must be a number\\x1b[31m, not bad")',
    '    sys.exit(43)',
    'n = len(os.listdir(os.environ["GPUQ_DATA"]))',
    'open(os.path.join(fb, "results.jsonl"), "w").write(json.dumps({"score": float(first), "data_files": n}) + "\\n")',
    // What a grader that saw a hostile submission could leave: links out, unsafe names, a FIFO.
    `os.symlink(${JSON.stringify(secretFile)}, os.path.join(fb, "leak"))`,
    'os.symlink("/", os.path.join(fb, "up"))',
    'open(os.path.join(fb, "evil\\nname"), "w").write("x")',
    'open(os.path.join(fb, "\\x1b]0;title\\x07"), "w").write("x")',
    'os.mkfifo(os.path.join(fb, "pipe"))',
    'os.mkdir(os.path.join(fb, "sub"))',
    'open(os.path.join(fb, "sub", "deep.txt"), "w").write("deep")',
    'sys.exit(42)',
  ].join('\n');
}

/** A program that writes `line` as its submission (or none). */
const program = (line: string | null) =>
  line === null ? 'print("no submission")\n' : `open("submission.csv", "w").write(${JSON.stringify(`${line}\n`)})\n`;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'gpuq-results-'));
  const secretFile = join(work, 'secret.txt');
  await writeFile(secretFile, SECRET);
  await mkdir(join(work, 'data'));
  await mkdir(join(work, 'answers'));
  await writeFile(join(work, 'data', 'a.csv'), '1\n');
  await writeFile(join(work, 'answers', 'truth.csv'), '1\n');
  await writeFile(join(work, 'grade.py'), graderSource(secretFile));
  const progs: Record<string, string | null> = {
    's05.py': '0.5',
    's09.py': '0.9',
    's07.py': '0.7',
    'bad.py': 'bad',
    'none.py': null,
  };
  for (const [name, line] of Object.entries(progs)) await writeFile(join(work, name), program(line));
  const comp = (metric: string, higherIsBetter: boolean) => ({
    data: join(work, 'data'),
    answers: join(work, 'answers'),
    grader: [SYSTEM_PYTHON, join(work, 'grade.py')],
    metric,
    higherIsBetter,
    limits: { timeout: '60s' },
  });
  home = await makeHome({ competitions: { hi: comp('accuracy', true) } }, {}, { autoCleanup: false });
  // The same competition with the metric's direction turned: the leaderboard reads it from the config.
  await writeFile(join(work, 'lower.json'), JSON.stringify({ competitions: { hi: comp('loss', false) } }));
});
afterAll(async () => {
  await home?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

const run = (args: string[]) => gpuq(home, args, { cwd: work });
const json = <T>(r: { code: number | null; stdout: string; stderr: string }): T => {
  if (r.stdout.trim() === '') throw new Error(`no JSON (exit ${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
};

/** Every file under `dir`, relative, sorted (links listed as such, never followed). */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(`${relative(dir, p)}${e.isSymbolicLink() ? ' (link)' : ''}`);
    }
  };
  await walk(dir);
  return out.sort();
}

describe('results', () => {
  it('a score, a rejection, the leaderboard both ways, a data set that changed, and --out', async () => {
    const [hi, plain] = await Promise.all([
      run(['submit', 's05.py', 's09.py', 'bad.py', 'none.py', '--competition', 'hi', '--wait', '--json']),
      run(['submit', 'none.py', '--wait', '-q']),
    ]);
    // The worst verdict of the four: rejected (19).
    expect(hi.code, hi.stderr).toBe(19);
    expect(plain.code, plain.stderr).toBe(0);
    const [s05, s09, bad, none] = json<Job[]>(hi);
    expect([s05, s09, bad, none].map((j) => [j?.verdict?.class, j?.verdict?.cause, j?.score])).toEqual([
      ['succeeded', null, 0.5],
      ['succeeded', null, 0.9],
      ['rejected', 'submission_invalid', null],
      ['rejected', 'submission_missing', null],
    ]);
    const plainId = plain.stdout.trim();

    // The data set changes; the next job is graded against the new one, and s09 is graded again.
    await writeFile(join(work, 'data', 'b.csv'), '2\n');
    const [s07, regrade] = await Promise.all([
      run(['submit', 's07.py', '--competition', 'hi', '--wait', '-q']),
      run(['grade', s09?.id as string]),
    ]);
    expect(s07.code, s07.stderr).toBe(0);
    expect(regrade.code, regrade.stderr).toBe(0);
    const s07Id = s07.stdout.trim();

    const out = join(work, 'out');
    const [page, pageJson, badPage, noComp, board, boardAll, boardLo, copied] = await Promise.all([
      run(['results', s09?.id as string]),
      run(['results', s07Id, '--json']),
      run(['results', bad?.id as string]),
      run(['results', plainId]),
      run(['results', '--competition', 'hi']),
      run(['results', '--competition', 'hi', '--all', '--json']),
      run(['--config', join(work, 'lower.json'), 'results', '--competition', 'hi', '--json']),
      run(['results', s09?.id as string, '--out', out]),
    ]);

    // One job's page: score, metrics, fingerprints, its history; a rejection's message, printable.
    expect(page.code, page.stderr).toBe(0);
    expect(page.stdout).toMatch(/^Competition +hi \(accuracy, higher is better\)$/m);
    expect(page.stdout).toMatch(/^Grading +2 of 2, .* UTC: succeeded$/m);
    expect(page.stdout).toMatch(/^Score +0\.9$/m);
    expect(page.stdout).toMatch(/^Metrics +data_files 2$/m);
    expect(page.stdout).toMatch(/^Data +sha256:[0-9a-f]{64}$/m);
    expect(page.stdout).toMatch(
      /\nHistory\n {2}1 {2}.* UTC {2}succeeded {2}0\.9 {2}\(other data\)\n {2}2 {2}.* UTC {2}succeeded {2}0\.9$/m,
    );
    const r07 = json<JobResults>(pageJson);
    expect(r07).toMatchObject({ graded: true, grading: 1, competition: 'hi', metric: 'accuracy' });
    expect(r07.newest).toMatchObject({ class: 'succeeded', score: 0.7, metrics: { data_files: 2 }, graderExit: 42 });
    expect(r07.newest?.submission).toMatchObject({ bytes: 4, crlf: false });
    const s09Data = s09?.gradings?.[0]?.dataFingerprint;
    expect(s09Data).toMatch(/^sha256:/);
    expect(r07.newest?.dataFingerprint).not.toBe(s09Data);
    expect(page.stdout).toContain(`Data         ${r07.newest?.dataFingerprint}`);
    expect(r07.newest?.answersFingerprint).toBe(s09?.gradings?.[0]?.answersFingerprint);
    expect(badPage.code, badPage.stderr).toBe(0);
    expect(badPage.stdout).toMatch(/^Grading +1 of 1, .*: rejected \(submission_invalid\)$/m);
    expect(badPage.stdout).toMatch(/^Message +.*line 1 must be a number, not bad/m);
    expect(badPage.stdout).not.toContain('\u001b');
    expect(badPage.stdout).toMatch(/^Score +-$/m);
    expect(badPage.stdout).toMatch(/^Grader exit +43$/m);
    expect(noComp.code).toBe(2);
    expect(noComp.stderr).toMatch(/has no competition, so it is not graded/);

    // The leaderboard, higher is better: the job graded on the old data only is not comparable.
    expect(board.code, board.stderr).toBe(0);
    const lines = board.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^hi: accuracy, higher is better; 3 graded jobs; compared with the data of job /);
    expect(lines[1]).toMatch(/^# +ID +NAME +SCORE +WHEN +NODE +DATA +NOTE$/);
    expect(lines.slice(2).map((l) => l.split(/\s+/).slice(0, 4))).toEqual([
      ['1', s09?.id, 's09.py', '0.9'],
      ['2', s07Id, 's07.py', '0.7'],
      ['3', s05?.id, 's05.py', '0.5'],
    ]);
    expect(lines[4]).toMatch(/not comparable: data differ$/);
    expect(lines.slice(2, 4).join('\n')).not.toMatch(/not comparable/);
    const all = json<BoardRow[]>(boardAll);
    expect(all.map((r) => [r.rank, r.score, r.notComparable])).toEqual([
      [1, 0.9, []],
      [2, 0.7, []],
      [3, 0.5, ['data']],
      [null, null, ['data']],
      [null, null, ['data']],
    ]);
    expect(
      all
        .slice(3)
        .map((r) => r.id)
        .sort(),
    ).toEqual([bad?.id, none?.id].sort());
    expect(all.slice(3).map((r) => r.class)).toEqual(['rejected', 'rejected']);
    // Lower is better: the lowest first (the same jobs, the config's direction turned).
    expect(json<BoardRow[]>(boardLo).map((r) => [r.rank, r.id, r.score])).toEqual([
      [1, s05?.id, 0.5],
      [2, s07Id, 0.7],
      [3, s09?.id, 0.9],
    ]);

    // --out: the submission and the feedback folder; links and unsafe names left out, said on stderr.
    expect(copied.code, copied.stderr).toBe(0);
    expect(await tree(out)).toEqual(['feedback/results.jsonl', 'feedback/sub/deep.txt', 'submission']);
    expect(await readFile(join(out, 'submission'), 'utf8')).toBe('0.9\n');
    expect(copied.stderr).toMatch(/left out "feedback\/leak": a symbolic link/);
    expect(copied.stderr).toMatch(/left out "feedback\/up": a symbolic link/);
    expect(copied.stderr).toMatch(/left out "feedback\/evil\\nname": an unsafe name/);
    expect(copied.stderr).toMatch(/left out "feedback\/\\u001b\]0;title\\u0007": an unsafe name/);
    expect(copied.stderr).toMatch(/left out "feedback\/pipe": not a regular file/);
    expect(copied.stderr).toMatch(/copied 3 file\(s\), .* of grading 2 into /);
    expect((await tree(work)).filter((f) => !f.startsWith('out/') && /leak|deep|results\.jsonl/.test(f))).toEqual([]);
    for (const f of await tree(out)) expect(await readFile(join(out, f), 'utf8')).not.toContain(SECRET);

    // Again: refused without --force (nothing written), then replaced with it.
    await writeFile(join(out, 'submission'), 'mine\n');
    const [again, notGraded, onFile] = await Promise.all([
      run(['results', s09?.id as string, '--out', out]),
      run(['results', plainId, '--out', join(work, 'out2')]),
      run(['results', s09?.id as string, '--out', join(work, 'secret.txt')]),
    ]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/3 files exist already: .*nothing copied\.\nReplace them with --force/s);
    expect(await readFile(join(out, 'submission'), 'utf8')).toBe('mine\n');
    expect(notGraded.code).toBe(2);
    expect(notGraded.stderr).toMatch(/nothing to copy: job .* has no competition|not graded/);
    expect(onFile.code).toBe(2);
    expect(onFile.stderr).toMatch(/cannot write into .*secret\.txt \(not a folder\)/);
    expect(await readFile(join(work, 'secret.txt'), 'utf8')).toBe(SECRET);
    const forced = await run(['results', s09?.id as string, '--out', out, '--force', '--json']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(
      json<JobResults>(forced)
        .out?.files.map((f) => f.name)
        .sort(),
    ).toEqual(['feedback/results.jsonl', 'feedback/sub/deep.txt', 'submission']);
    expect(await readFile(join(out, 'submission'), 'utf8')).toBe('0.9\n');
  });
});
