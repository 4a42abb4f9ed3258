/**
 * The grading judgement (issue 13, src/core/grading.ts): one row per way a grading can end, the
 * blame split (the submitter's `rejected`, the operator's `grading_failed`), results.jsonl's
 * every malformation naming its line, and hostile text from the grader bounded and printable.
 */
import { describe, expect, it } from 'vitest';
import type { CompetitionConfig } from '../../src/config/types.js';
import {
  type GradingFiles,
  type GradingStatus,
  gradeArgs,
  gradedVerdict,
  judgeGrading,
  messageText,
  parseGradingStatus,
  parseResults,
  RESULTS_MAX_BYTES,
  scoreText,
  submissionPathProblem,
  withGrading,
} from '../../src/core/grading.js';
import { renderDiagnosis } from '../../src/cli/diagnose.js';
import { gradingLines, scoreCell } from '../../src/cli/render-grading.js';
import { makeStyle } from '../../src/cli/style.js';
import { graderReport } from '../../src/core/grading.js';
import { gradingShape, jobShape, verdictShape } from '../../src/core/job-shape.js';
import type { Diagnosis } from '../../src/services/diagnose.js';
import { check } from '../../src/core/shape.js';
import type { Job, Verdict } from '../../src/core/types.js';

const FP = `sha256:${'a'.repeat(64)}`;

function status(over: Partial<GradingStatus> = {}): GradingStatus {
  return {
    version: 1,
    state: 'done',
    number: 1,
    startedAtMs: 1_795_000_000_000,
    endedAtMs: 1_795_000_001_500,
    exitCode: 42,
    signal: null,
    timedOut: false,
    memoryKilled: false,
    outputOverflow: false,
    cancelled: false,
    peakRssBytes: 10 * 1024 * 1024,
    leftovers: 0,
    error: null,
    submission: { status: 'ok', reason: null, bytes: 12, sha256: 'b'.repeat(64), crlf: false, encoding: 'utf-8' },
    submissionName: 'submission.csv',
    dataFingerprint: FP,
    answersFingerprint: FP,
    limits: {
      timeoutS: 60,
      memoryBytes: 2 * 1024 ** 3,
      outputBytes: 8 * 1024 ** 2,
      maxSubmissionBytes: 100 * 1024 ** 2,
    },
    grader: ['python3', '/srv/grade.py'],
    ...over,
  };
}

function files(over: Partial<GradingFiles> = {}, st: Partial<GradingStatus> | null = {}): GradingFiles {
  const results = over.results === undefined ? '{"score": 0.75, "f1": 0.5}\n' : over.results;
  return {
    number: 1,
    status: st === null ? null : status(st),
    results,
    resultsBytes: results === null ? null : Buffer.byteLength(results),
    message: null,
    stderrTail: '',
    ...over,
  };
}

const CTX = {
  jobId: 'abc12345',
  node: 'gpu1',
  competition: 'digits',
  metric: 'accuracy',
  at: '2026-01-01T00:00:00.000Z',
};

const judge = (f: GradingFiles) => judgeGrading(f, CTX);

describe('judgeGrading: who is to blame', () => {
  const rows: Array<{ name: string; f: GradingFiles; cls: string; cause: string | null; msg?: RegExp }> = [
    { name: 'exit 42 with a valid results.jsonl', f: files(), cls: 'succeeded', cause: null },
    {
      name: 'no submission file',
      f: files(
        {},
        {
          submission: {
            status: 'missing',
            reason: 'the program wrote no submission.csv',
            bytes: null,
            sha256: null,
            crlf: null,
            encoding: null,
          },
          exitCode: null,
        },
      ),
      cls: 'rejected',
      cause: 'submission_missing',
      msg: /wrote no submission\.csv/,
    },
    {
      name: 'a symlink submission',
      f: files(
        {},
        {
          submission: {
            status: 'invalid',
            reason: 'submission.csv is a symbolic link',
            bytes: null,
            sha256: null,
            crlf: null,
            encoding: null,
          },
          exitCode: null,
        },
      ),
      cls: 'rejected',
      cause: 'submission_invalid',
      msg: /symbolic link/,
    },
    {
      name: 'exit 43 with a message',
      f: files({ message: 'line 3: expected 10 columns\n', results: null }, { exitCode: 43 }),
      cls: 'rejected',
      cause: 'submission_invalid',
      msg: /^line 3: expected 10 columns$/,
    },
    {
      name: 'exit 43 without a message',
      f: files({ results: null }, { exitCode: 43 }),
      cls: 'rejected',
      cause: 'submission_invalid',
    },
    { name: 'exit 0', f: files({}, { exitCode: 0 }), cls: 'grading_failed', cause: 'grader_error', msg: /exited 0/ },
    {
      name: 'exit 1 (a crash)',
      f: files({ results: null }, { exitCode: 1 }),
      cls: 'grading_failed',
      cause: 'grader_error',
      msg: /exited 1/,
    },
    {
      name: 'killed by a signal',
      f: files({ results: null }, { exitCode: 139, signal: 11 }),
      cls: 'grading_failed',
      cause: 'grader_error',
      msg: /SIGSEGV/,
    },
    {
      name: 'over its time limit (even with exit 42)',
      f: files({}, { timedOut: true, exitCode: 143, signal: 15 }),
      cls: 'grading_failed',
      cause: 'grader_timeout',
      msg: /1m time limit|60s time limit|time limit/,
    },
    {
      name: 'over its memory',
      f: files({ results: null }, { memoryKilled: true, exitCode: 137, signal: 9 }),
      cls: 'grading_failed',
      cause: 'grader_oom',
    },
    {
      name: 'over its output',
      f: files({ results: null }, { outputOverflow: true, exitCode: 137, signal: 9 }),
      cls: 'grading_failed',
      cause: 'grader_error',
      msg: /output/,
    },
    {
      name: 'timeout wins over exit 43',
      f: files({ message: 'bad' }, { timedOut: true, exitCode: 43 }),
      cls: 'grading_failed',
      cause: 'grader_timeout',
    },
    {
      name: 'a grader that could not start',
      f: files(
        { results: null },
        { exitCode: null, error: 'cannot start the grader /nope: No such file or directory' },
      ),
      cls: 'grading_failed',
      cause: 'grader_error',
      msg: /cannot start/,
    },
    {
      name: 'no status.json',
      f: files({}, null),
      cls: 'grading_failed',
      cause: 'grader_error',
      msg: /no readable status/,
    },
    {
      name: 'a grading that did not finish',
      f: files({}, { state: 'running', endedAtMs: null, exitCode: null }),
      cls: 'grading_failed',
      cause: 'grader_error',
      msg: /did not finish/,
    },
    {
      name: 'a grading stopped by a cancel',
      f: files({}, { cancelled: true }),
      cls: 'grading_failed',
      cause: 'grader_error',
      msg: /stopped/,
    },
    {
      name: 'exit 42, no results.jsonl',
      f: files({ results: null }),
      cls: 'grading_failed',
      cause: 'bad_results',
      msg: /no results\.jsonl/,
    },
    {
      name: 'exit 42, empty results.jsonl',
      f: files({ results: '' }),
      cls: 'grading_failed',
      cause: 'bad_results',
      msg: /empty/,
    },
    {
      name: 'exit 42, results.jsonl over the cap',
      f: files({ results: null, resultsBytes: RESULTS_MAX_BYTES + 1 }),
      cls: 'grading_failed',
      cause: 'bad_results',
      msg: /over gpuq's/,
    },
    {
      name: 'exit 42, a malformed line',
      f: files({ results: '{"score": 1}\n{oops\n' }),
      cls: 'grading_failed',
      cause: 'bad_results',
      msg: /^line 2 is not JSON/,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const j = judge(r.f);
      expect(j.grading.class).toBe(r.cls);
      expect(j.grading.cause).toBe(r.cause);
      if (r.msg) expect(j.grading.message ?? '').toMatch(r.msg);
      // every record fits the ledger's shape
      expect(check(gradingShape, j.grading).ok).toBe(true);
      if (r.cls === 'grading_failed') {
        expect(j.summary).toContain("not your submission's fault");
        expect(j.hints.join(' ')).toContain(`gpuq grade ${CTX.jobId}`);
      } else {
        expect(j.summary).not.toContain("not your submission's fault");
      }
    });
  }

  it('a graded job carries score, metrics, fingerprints and the submission record', () => {
    const j = judge(files({ message: 'well done' }, { submission: { ...status().submission!, crlf: true } }));
    expect(j.grading).toMatchObject({
      class: 'succeeded',
      score: 0.75,
      metrics: { f1: 0.5 },
      graderExit: 42,
      dataFingerprint: FP,
      answersFingerprint: FP,
      submission: { bytes: 12, crlf: true, encoding: 'utf-8' },
      message: 'well done',
      at: new Date(1_795_000_001_500).toISOString(),
    });
    expect(j.summary).toBe('Graded: accuracy 0.75.');
    expect(j.evidence.join('\n')).toMatch(/grading 1: grader exit 42 after 1\.5s/);
    expect(j.evidence.join('\n')).toMatch(/CRLF line endings/);
  });

  it("the rejected hints are the submitter's, the failed ones the operator's", () => {
    const missing = judge(
      files(
        {},
        { submission: { status: 'missing', reason: null, bytes: null, sha256: null, crlf: null, encoding: null } },
      ),
    );
    expect(missing.hints.join(' ')).toMatch(/must write submission\.csv/);
    const slow = judge(files({}, { timedOut: true }));
    expect(slow.hints.join(' ')).toMatch(/competitions\.digits\.graderLimits\.timeout/);
    const fat = judge(files({}, { memoryKilled: true }));
    expect(fat.hints.join(' ')).toMatch(/graderLimits\.memory/);
  });

  it("records the grading folder's number where a status.json was read, never a guessed one", () => {
    expect(judge({ ...files(), number: 3 }).grading.number).toBe(3);
    expect(judge({ ...files(), number: 3, status: null }).grading.number).toBeUndefined();
  });

  it("a fingerprint that is not one is dropped; a time that is not one falls back to the client's", () => {
    const j = judge(files({}, { dataFingerprint: '\u001b[31mred', endedAtMs: 5 }));
    expect(j.grading.dataFingerprint).toBeNull();
    expect(j.grading.at).toBe(CTX.at);
  });
});

describe('parseResults', () => {
  it('takes the first score, merges metrics (later lines win), skips blank lines and CRLF', () => {
    const r = parseResults('{"score": 3, "a": 1}\r\n\n{"a": 2, "b": "x", "c": null, "d": true}\n');
    expect(r).toEqual({ ok: true, score: 3, metrics: { a: 2, b: 'x', c: null, d: true }, dropped: 0 });
  });
  it('a score on a later line counts', () => {
    expect(parseResults('{"n": 1}\n{"score": -0.5}\n')).toMatchObject({ ok: true, score: -0.5 });
  });
  const bad: Array<[string, string, RegExp]> = [
    ['no score anywhere', '{"acc": 1}\n', /no line .* numeric "score"/],
    [
      'a string score',
      '{"score": "0.9"}\n',
      /^line 1: "score" is "\\"0\.9\\"", not a finite number|^line 1: "score" is/,
    ],
    ['a null score', '{"n":1}\n{"score": null}\n', /^line 2: "score" is/],
    ['NaN (Python writes it)', '{"score": NaN}\n', /^line 1 .*NaN and Infinity/],
    ['Infinity', '{"score": Infinity}\n', /^line 1 .*non-finite/],
    ['an array line', '[1, 2]\n', /^line 1 is not a JSON object/],
    ['a number line', '{"score": 1}\n42\n', /^line 2 is not a JSON object/],
    ['torn JSON', '{"score": 1', /^line 1 is not JSON/],
    ['only blank lines', '\n\n  \n', /empty/],
    ['a huge score number', '{"score": 1e999}\n', /not a finite number/],
  ];
  for (const [name, text, want] of bad) {
    it(`refuses ${name}`, () => {
      const r = parseResults(text);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.problem).toMatch(want);
    });
  }
  it('drops nested values and counts them; bounds names, strings and the number of metrics', () => {
    const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`m${i}`, i]));
    const r = parseResults(
      `${JSON.stringify({ score: 1, nested: { a: 1 }, list: [1], '\u001b[2Jevil\nname': 'x'.repeat(5000), ...many })}\n`,
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(Object.keys(r.metrics).length).toBe(64);
    expect(r.dropped).toBeGreaterThanOrEqual(2 + 37);
    for (const [k, v] of Object.entries(r.metrics)) {
      expect(k).not.toMatch(/[\u0000-\u001f\u007f]/);
      expect(k.length).toBeLessThanOrEqual(64);
      if (typeof v === 'string') expect(v.length).toBeLessThanOrEqual(200);
    }
  });
  it('quotes a bad line bounded and printable', () => {
    const r = parseResults(`\u001b]0;title\u0007${'z'.repeat(10_000)}\n`);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problem.length).toBeLessThan(200);
      expect(r.problem).not.toMatch(/[\u0000-\u001f]/);
    }
  });
});

describe('hostile grader text', () => {
  it('message.txt: one printable line, bounded', () => {
    const m = messageText(`bad\u001b[31m red\nsecond\tline\u202e${'x'.repeat(50_000)}`) as string;
    expect(m).not.toMatch(/[\u0000-\u001f\u007f\u202e]/);
    expect(m.length).toBeLessThanOrEqual(1000);
    expect(m.startsWith('bad red second line')).toBe(true);
    expect(messageText('  \n ')).toBeNull();
    expect(messageText(null)).toBeNull();
  });
  it("the grader's stderr tail reaches the evidence printable", () => {
    const j = judge(
      files({ stderrTail: `Traceback\n\u001b[2JKeyError: 'x'\u0007\n\n`, results: null }, { exitCode: 1 }),
    );
    const line = j.evidence.find((e) => e.includes('stderr')) as string;
    expect(line).toBe("grading 1: grader stderr: KeyError: 'x'");
  });
  it('a status.json of the wrong shape is no status', () => {
    expect(parseGradingStatus('{"version":1}')).toBeNull();
    expect(parseGradingStatus('not json')).toBeNull();
    expect(parseGradingStatus(JSON.stringify(status()))).not.toBeNull();
  });
});

describe('the verdict and the job', () => {
  const program: Verdict = {
    class: 'succeeded',
    cause: null,
    exitCode: 0,
    signal: null,
    timedOut: false,
    summary: 'Exited 0.',
    evidence: ['exit code 0'],
    hints: [],
  };
  it("a graded verdict keeps the program's exit and evidence, adds the score", () => {
    const v = gradedVerdict(program, judge(files()));
    expect(v).toMatchObject({ class: 'succeeded', exitCode: 0, score: 0.75, metrics: { f1: 0.5 } });
    expect(v.evidence[0]).toBe('exit code 0');
    expect(check(verdictShape, v).ok).toBe(true);
  });
  it("a regrade replaces the older grading's evidence and decides the verdict", () => {
    const first = gradedVerdict(program, judge(files({}, { exitCode: 0 })));
    expect(first.class).toBe('grading_failed');
    const second = gradedVerdict(first, judge({ ...files(), number: 2 }));
    expect(second.class).toBe('succeeded');
    expect(second.evidence.filter((e) => e.startsWith('grading 1:'))).toEqual([]);
    expect(second.evidence.some((e) => e.startsWith('grading 2:'))).toBe(true);
  });
  it('withGrading appends, copies the newest score up, and clears it after a failed regrade', () => {
    const job = {
      id: 'abc12345',
      verdict: program,
      gradings: undefined,
    } as unknown as Job;
    const once = withGrading(job, judge(files()));
    expect(once.gradings).toHaveLength(1);
    expect(once.score).toBe(0.75);
    const twice = withGrading(once, judge({ ...files({}, { exitCode: 1 }), number: 2 }));
    expect(twice.gradings?.map((g) => g.class)).toEqual(['succeeded', 'grading_failed']);
    expect(twice.score).toBeNull();
    expect(twice.verdict?.class).toBe('grading_failed');
    expect(jobShape).toBeDefined();
  });
});

describe('gradeArgs and the submission path', () => {
  const comp: CompetitionConfig = {
    name: 'digits',
    grader: ['python3', '/srv/grade.py', '--strict'],
    data: '/srv/data',
    answers: null,
    submission: 'out/sub.csv',
    graderLimits: { timeoutS: 1.5, memoryBytes: 1024 ** 3, outputBytes: 1024 },
    maxSubmissionBytes: 4096,
    metric: 'accuracy',
    higherIsBetter: true,
    requireBoundary: false,
    limits: {},
  } as CompetitionConfig;
  it("renders grade.py's arguments, the grader last", () => {
    expect(gradeArgs(comp)).toEqual([
      '--submission',
      'out/sub.csv',
      '--data',
      '/srv/data',
      '--answers',
      '',
      '--timeout-s',
      '1.5',
      '--memory-bytes',
      String(1024 ** 3),
      '--output-bytes',
      '1024',
      '--max-submission-bytes',
      '4096',
      '--',
      'python3',
      '/srv/grade.py',
      '--strict',
    ]);
  });
  it('no grader: no grading', () => {
    expect(gradeArgs({ ...comp, grader: null })).toEqual([]);
    expect(gradeArgs(undefined)).toEqual([]);
  });
  it('refuses absolute paths and . or .. parts', () => {
    expect(submissionPathProblem('submission.csv')).toBeNull();
    expect(submissionPathProblem('out/a.csv')).toBeNull();
    for (const p of ['/etc/passwd', '../x', 'a/../b', './x', 'a//b', '', 'a/'])
      expect(submissionPathProblem(p)).not.toBeNull();
  });
  it('prints scores compactly', () => {
    expect(scoreText(0.6666666666666666)).toBe('0.666667');
    expect(scoreText(3)).toBe('3');
    expect(scoreText(-1.5)).toBe('-1.5');
  });
});

describe('how gradings print', () => {
  const plain = makeStyle({ isTTY: false, env: {}, json: false });
  const program: Verdict = {
    class: 'succeeded',
    cause: null,
    exitCode: 0,
    signal: null,
    timedOut: false,
    summary: 'Exited 0.',
    evidence: [],
    hints: [],
  };
  const base = { id: 'abc12345', verdict: program, history: [] } as unknown as Job;

  it('list: the score for a graded job, nothing for the others', () => {
    const graded = withGrading(base, judge(files()));
    expect(scoreCell(graded)).toBe('score 0.75');
    const failed = withGrading(base, judge(files({}, { exitCode: 1 })));
    expect(scoreCell(failed)).toBeNull();
  });

  it('show: the score, metrics and every grading with its fingerprints and message', () => {
    const twice = withGrading(withGrading(base, judge(files({}, { exitCode: 0 }))), judge({ ...files(), number: 2 }));
    const text = gradingLines(twice, plain).join('\n');
    expect(text).toMatch(/^Score {6}0\.75 {2}\(f1 0\.5\)/);
    expect(text).toMatch(/ {2}1 {2}\S+ {2}grading_failed {2}grader_error {2}grader exit 0\n {5}message: it exited 0/);
    expect(text).toMatch(/ {2}2 {2}\S+ {2}succeeded {2}score 0\.75 {2}grader exit 42/);
    expect(text).toMatch(/data sha256:aaaaaaaaaaaa {2}answers sha256:aaaaaaaaaaaa/);
  });

  it('diagnose: the grader, its exit and limits, its message and the end of its stderr, printable', () => {
    const report = graderReport(
      files(
        { stderrTail: 'loading\n\u001b[31mKeyError: x\n', message: 'bad \u0007row\n', results: null },
        { exitCode: 1 },
      ),
    );
    const d = {
      id: 'abc12345',
      name: 'solution.py',
      node: 'gpu1',
      state: 'done',
      verdict: { ...program, class: 'grading_failed', cause: 'grader_error', summary: 'The grader failed' },
      summary: 'The grader failed',
      evidence: [],
      limits: {},
      peaks: [],
      durationMs: null,
      current: null,
      stderrTail: [],
      folder: null,
      nodeFacts: { reachable: true, error: null, status: null },
      hints: [],
      notes: [],
      grading: report,
    } as unknown as Diagnosis;
    const page = renderDiagnosis(d, plain);
    expect(page).toMatch(/Grader \(grading 1\)\n {2}grader {4}python3 \/srv\/grade\.py\n {2}ended {5}exit 1 after 2s/);
    expect(page).toMatch(/limits {4}1m wall clock, 2 GiB memory, 8 MiB output, submission up to 100 MiB/);
    expect(page).toMatch(/message {3}bad row/);
    expect(page).toMatch(/\| loading\n {2}\| KeyError: x/);
    expect(page).not.toMatch(/[\u0000-\u0008\u001b]/);
  });
});

describe('competition paths in the config', () => {
  it('./ and ../ in data, answers and grader arguments are relative to the config file; node paths stay', async () => {
    const { buildConfig } = await import('../../src/config/load.js');
    const c = buildConfig(
      {
        competitions: {
          ex: { data: './data', answers: '../answers', grader: ['python3', './grade.py', '--x', '/abs'] },
          node: { data: '~/d', answers: '/srv/a', grader: ['/srv/grade'] },
        },
      },
      '/home/u/ex/gpuq.config.json',
      '/tmp/state',
    );
    expect(c.competitions.ex).toMatchObject({
      data: '/home/u/ex/data',
      answers: '/home/u/answers',
      grader: ['python3', '/home/u/ex/grade.py', '--x', '/abs'],
    });
    expect(c.competitions.node).toMatchObject({ data: '~/d', answers: '/srv/a', grader: ['/srv/grade'] });
  });
  it('a submission path with . parts is refused, naming the field', async () => {
    const { buildConfig } = await import('../../src/config/load.js');
    expect(() =>
      buildConfig({ competitions: { ex: { submission: './out/s.csv' } } }, '/home/u/gpuq.config.json', '/tmp/state'),
    ).toThrow(/competitions\.ex\.submission/);
  });
});
