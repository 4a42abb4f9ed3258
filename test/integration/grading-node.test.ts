/**
 * templates/grade.py alone (issue 13), run as the supervisor runs it, on job folders made here:
 * the submission check's refusals that need no whole job (a FIFO, a hard link, a link among the
 * folders of the path), what it records (CRLF, encoding, sha256), how it numbers gradings, and
 * that the supervisor's first grading removes a gradings/ folder the job planted. Real python3,
 * no gpuq process: each case is a fraction of a second.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseGradingStatus } from '../../src/core/grading.js';
import { REPO, SYSTEM_PYTHON } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'gpuq-grade-py-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const GRADER = join(root, 'grader.py');
writeFileSync(
  GRADER,
  'import sys, os\nopen(os.path.join(sys.argv[3], "results.jsonl"), "w").write(\'{"score": 1}\\n\')\nsys.exit(42)\n',
);
mkdirSync(join(root, 'answers'));
writeFileSync(join(root, 'answers', 'a.txt'), 'a\n');

let n = 0;
/** A job folder (<root>/wN/jobs/job) with grade.py and fingerprint.py, as the client uploads them. */
function jobDir(): string {
  const dir = join(root, `w${n++}`, 'jobs', 'job');
  mkdirSync(join(dir, 'work'), { recursive: true });
  for (const f of ['grade.py', 'fingerprint.py']) writeFileSync(join(dir, f), readFileSync(join(REPO, 'templates', f)));
  return dir;
}

/** Runs grade.py in `dir`; returns the grading's number and its parsed status.json. */
function grade(dir: string, extra: string[] = [], maxBytes = 1024, grader = GRADER) {
  const r = spawnSync(
    SYSTEM_PYTHON,
    [
      '-I',
      '-S',
      './grade.py',
      ...extra,
      '--submission',
      'out/submission.csv',
      '--answers',
      join(root, 'answers'),
      '--timeout-s',
      '20',
      '--memory-bytes',
      String(512 * 1024 ** 2),
      '--output-bytes',
      '65536',
      '--max-submission-bytes',
      String(maxBytes),
      '--',
      SYSTEM_PYTHON,
      grader,
    ],
    { cwd: dir, encoding: 'utf8', timeout: 60_000 },
  );
  expect(r.status, r.stderr).toBe(0);
  const num = Number(r.stdout.trim());
  const status = parseGradingStatus(readFileSync(join(dir, 'gradings', String(num), 'status.json'), 'utf8'));
  expect(status, 'status.json of the right shape').not.toBeNull();
  return { num, status: status as NonNullable<typeof status> };
}

describe('grade.py', () => {
  it('records bytes, sha256, CRLF and utf-8, copies the file, runs the grader on the copy', () => {
    const dir = jobDir();
    mkdirSync(join(dir, 'work', 'out'));
    const text = 'id,label\r\n1,é\r\n';
    writeFileSync(join(dir, 'work', 'out', 'submission.csv'), text);
    const { num, status } = grade(dir, ['--fresh']);
    expect(num).toBe(1);
    expect(status).toMatchObject({ state: 'done', exitCode: 42, timedOut: false, memoryKilled: false });
    expect(status.submission).toMatchObject({
      status: 'ok',
      bytes: Buffer.byteLength(text),
      sha256: createHash('sha256').update(text).digest('hex'),
      crlf: true,
      encoding: 'utf-8',
    });
    expect(readFileSync(join(dir, 'gradings', '1', 'submission'), 'utf8')).toBe(text);
    expect(status.answersFingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(status.dataFingerprint).toBeNull();
  });

  it('notes a binary file, and numbers the next grading 2 without touching 1', () => {
    const dir = jobDir();
    mkdirSync(join(dir, 'work', 'out'));
    writeFileSync(join(dir, 'work', 'out', 'submission.csv'), Buffer.from([0xff, 0xfe, 0x00, 0x0a]));
    expect(grade(dir, ['--fresh']).status.submission).toMatchObject({ status: 'ok', encoding: 'binary', crlf: false });
    const before = readFileSync(join(dir, 'gradings', '1', 'status.json'), 'utf8');
    const second = grade(dir);
    expect(second.num).toBe(2);
    expect(readFileSync(join(dir, 'gradings', '1', 'status.json'), 'utf8')).toBe(before);
  });

  const refusals: Array<[string, (work: string) => void, string, RegExp]> = [
    ['a FIFO', (w) => execFileSync('mkfifo', [join(w, 'out', 'submission.csv')]), 'invalid', /not a regular file/],
    [
      'a hard link to another file',
      (w) => {
        writeFileSync(join(root, 'secret.txt'), 'secret\n');
        linkSync(join(root, 'secret.txt'), join(w, 'out', 'submission.csv'));
      },
      'invalid',
      /hard link/,
    ],
    [
      'a link in place of a folder of the path',
      (w) => symlinkSync(root, join(w, 'out-real')),
      'invalid',
      /symbolic link/,
    ],
    [
      'a file in place of a folder of the path',
      (w) => writeFileSync(join(w, 'out-real'), 'x'),
      'invalid',
      /not a folder/,
    ],
    ['no folder at all', () => undefined, 'missing', /does not exist/],
  ];
  for (const [name, make, status, reason] of refusals) {
    it(`refuses ${name} without running the grader`, () => {
      const dir = jobDir();
      const work = join(dir, 'work');
      if (!name.includes('place of a folder') && name !== 'no folder at all') mkdirSync(join(work, 'out'));
      make(work);
      if (name.includes('place of a folder')) execFileSync('mv', [join(work, 'out-real'), join(work, 'out')]);
      const r = grade(dir, ['--fresh']);
      expect(r.status.submission).toMatchObject({ status });
      expect(r.status.submission?.reason ?? '').toMatch(reason);
      expect(r.status.exitCode).toBeNull();
      expect(existsSync(join(dir, 'gradings', String(r.num), 'submission'))).toBe(false);
      expect(existsSync(join(dir, 'gradings', String(r.num), 'stdout.log'))).toBe(false);
    });
  }

  it('stops a grader over its output and cuts its logs to the cap', () => {
    const dir = jobDir();
    mkdirSync(join(dir, 'work', 'out'));
    writeFileSync(join(dir, 'work', 'out', 'submission.csv'), 'x\n');
    const loud = join(root, 'loud.py');
    writeFileSync(
      loud,
      'import sys, time\nwhile True:\n    sys.stdout.write("y" * 65536)\n    sys.stdout.flush()\n    time.sleep(0.01)\n',
    );
    const r = grade(dir, ['--fresh'], 1024, loud);
    expect(r.status).toMatchObject({ outputOverflow: true, signal: 9 });
    expect(readFileSync(join(dir, 'gradings', '1', 'stdout.log')).length).toBeLessThanOrEqual(65536);
  });

  it('kills what the grader left running (a double-forked daemon in its own session)', () => {
    const dir = jobDir();
    mkdirSync(join(dir, 'work', 'out'));
    writeFileSync(join(dir, 'work', 'out', 'submission.csv'), 'x\n');
    const pidFile = join(root, `daemon-${n}.pid`);
    const forks = join(root, 'forks.py');
    writeFileSync(
      forks,
      `import os, sys, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        open(${JSON.stringify(pidFile)}, "w").write(str(os.getpid()))\n        time.sleep(120)\n    os._exit(0)\n` +
        `time.sleep(0.3)\nopen(os.path.join(sys.argv[3], "results.jsonl"), "w").write('{"score": 2}\\n')\nsys.exit(42)\n`,
    );
    const r = grade(dir, ['--fresh'], 1024, forks);
    expect(r.status).toMatchObject({ exitCode: 42 });
    expect(r.status.leftovers).toBeGreaterThanOrEqual(1);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    expect(alive).toBe(false);
  });

  it('--fresh removes a gradings/ folder the job planted (a fake grading 7, a link)', () => {
    const dir = jobDir();
    mkdirSync(join(dir, 'gradings', '7'), { recursive: true });
    writeFileSync(join(dir, 'gradings', '7', 'status.json'), '{"fake": true}');
    symlinkSync(root, join(dir, 'gradings', '8'));
    mkdirSync(join(dir, 'work', 'out'));
    writeFileSync(join(dir, 'work', 'out', 'submission.csv'), 'x\n');
    const r = grade(dir, ['--fresh']);
    expect(r.num).toBe(1);
    expect(existsSync(join(dir, 'gradings', '7'))).toBe(false);
    expect(existsSync(join(dir, 'gradings', '8'))).toBe(false);
    // the link was removed, not followed
    expect(existsSync(join(root, 'answers', 'a.txt'))).toBe(true);
  });
});
