import { describe, expect, it } from 'vitest';
import {
  type CheckTarget,
  checkProblems,
  expandHome,
  folderText,
  parseCompetitionCheck,
} from '../../src/core/competition-check.js';

const FP = `sha256:${'ab'.repeat(32)}`;
const FP2 = `sha256:${'cd'.repeat(32)}`;

const targets: CheckTarget[] = [
  { name: 'digits', data: '~/data', answers: '/srv/answers', grader: ['python3', '/srv/grade.py', '--flag'] },
  { name: 'bare', data: null, answers: null, grader: null },
  { name: 'gone', data: '/nope', answers: '/etc/passwd', grader: ['/srv/grade.sh', '/srv/missing.py'] },
];

describe('parseCompetitionCheck', () => {
  it('reads folders, grader and fingerprints by index, expanding ~ with the home the node printed', () => {
    const out = [
      'home /home/u',
      'dir 0 data ok',
      'dir 0 answers ok',
      'grader 0 ok /usr/bin/python3',
      'dir 2 data missing',
      'dir 2 answers notdir',
      'grader 2 notexec',
      'garg 2 1 missing',
      `fp {"/home/u/data": {"fingerprint": "${FP}", "files": 3, "bytes": 1200, "error": null}, "/srv/answers": {"fingerprint": "${FP2}", "files": 1, "bytes": 9, "error": null}}`,
      'noise that is ignored',
    ].join('\n');
    const [digits, bare, gone] = parseCompetitionCheck(out, targets, 300);
    expect(digits).toEqual({
      name: 'digits',
      data: { path: '~/data', status: 'ok', fingerprint: FP, files: 3, bytes: 1200, error: null },
      answers: { path: '/srv/answers', status: 'ok', fingerprint: FP2, files: 1, bytes: 9, error: null },
      grader: {
        command: ['python3', '/srv/grade.py', '--flag'],
        status: 'ok',
        resolved: '/usr/bin/python3',
        missingFiles: [],
      },
      problems: [],
    });
    expect(bare).toMatchObject({
      data: { status: 'unset' },
      answers: { status: 'unset' },
      grader: { status: 'unset', command: null },
      problems: ['no grader in the config: its jobs are not graded'],
    });
    expect(gone?.problems).toEqual([
      'the data folder "/nope" does not exist',
      'the answers folder "/etc/passwd" is not a folder',
      `the grader's program "/srv/grade.sh" is not executable`,
      `the grader's file "/srv/missing.py" does not exist`,
    ]);
  });

  it('says why a folder that is there has no fingerprint: no python, a timeout, an error, a bad record', () => {
    const base = ['home /h', 'dir 0 data ok', 'dir 0 answers unreadable', 'grader 0 missing'];
    const [noPy] = parseCompetitionCheck([...base, 'python none'].join('\n'), targets, 300);
    expect(noPy?.data).toMatchObject({
      status: 'ok',
      fingerprint: null,
      error: 'no python3 on the node to take its fingerprint',
    });
    expect(noPy?.problems).toEqual([
      'the data folder "~/data": no fingerprint: no python3 on the node to take its fingerprint',
      `the answers folder "/srv/answers" cannot be read by gpuq's account`,
      `the grader's program "python3" is not on the node (not found on PATH or at that path)`,
    ]);
    const [slow] = parseCompetitionCheck([...base, 'fp-timeout'].join('\n'), targets, 120);
    expect(slow?.data.error).toMatch(/took longer than 120 s/);
    const [failed] = parseCompetitionCheck(
      [
        ...base,
        'fp {"/h/data": {"fingerprint": null, "files": 0, "bytes": 0, "error": "/h/data: Permission denied"}}',
      ].join('\n'),
      targets,
      300,
    );
    expect(failed?.data).toMatchObject({ fingerprint: null, error: '/h/data: Permission denied' });
    // A record that is not what fingerprint.py prints: no fingerprint, never a made-up one.
    const [forged] = parseCompetitionCheck(
      [...base, 'fp {"/h/data": {"fingerprint": "sha256:short", "files": -1, "bytes": "x"}}'].join('\n'),
      targets,
      300,
    );
    expect(forged?.data).toMatchObject({ fingerprint: null, files: 0, bytes: 0, error: 'no fingerprint' });
    const [torn] = parseCompetitionCheck([...base, 'fp {"/h/da'].join('\n'), targets, 300);
    expect(torn?.data.error).toBe('the node gave no fingerprint');
  });

  it('counts a folder or grader the answer does not mention as missing, and cleans what it prints', () => {
    const [digits] = parseCompetitionCheck('', targets, 300);
    expect(digits?.data.status).toBe('missing');
    expect(digits?.grader.status).toBe('missing');
    const [x] = parseCompetitionCheck('grader 0 ok /usr/bin/py\u001b[31mthon', targets, 300);
    expect(x?.grader.resolved).toBe('/usr/bin/python');
  });
});

describe('helpers', () => {
  it('expandHome', () => {
    expect(expandHome('~/d', '/home/u/')).toBe('/home/u/d');
    expect(expandHome('~', '/home/u')).toBe('/home/u');
    expect(expandHome('/abs', '/home/u')).toBe('/abs');
    expect(expandHome('~/d', null)).toBe('~/d');
  });
  it('folderText', () => {
    const f = { path: '/d', status: 'ok' as const, fingerprint: FP, files: 1, bytes: 2048, error: null };
    expect(folderText(f)).toBe(`sha256:${'ab'.repeat(6)} (1 file, 2 KiB)`);
    expect(folderText({ ...f, status: 'notdir' })).toBe('not a folder');
    expect(folderText({ ...f, status: 'missing' })).toBe('missing');
    expect(folderText({ ...f, status: 'unset' })).toBe('-');
    expect(folderText({ ...f, fingerprint: null })).toBe('no fingerprint');
  });
  it('checkProblems: none for a competition that is ready', () => {
    const ok = { path: '/d', status: 'ok' as const, fingerprint: FP, files: 1, bytes: 1, error: null };
    expect(
      checkProblems({
        name: 'x',
        data: ok,
        answers: ok,
        grader: { command: ['g'], status: 'ok', resolved: '/bin/g', missingFiles: [] },
      }),
    ).toEqual([]);
  });
});
