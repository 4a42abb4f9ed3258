/**
 * Grading (issue 13): what a grading step left in `gradings/N/` (templates/grade.py's status.json,
 * the grader's feedback/results.jsonl and message.txt, the tail of its stderr) turned into a
 * `Grading` record and the job's verdict. Pure.
 *
 * Blame is split as the grader contract says: a missing or refused submission and the grader's
 * exit 43 are the submitter's (`rejected`); anything else that is not exit 42 with a valid
 * results.jsonl is the grader's (`grading_failed`, never counted against the submission). Every
 * text read here was written by a grader that saw hostile input: bounded and printable().
 */
import type { CompetitionConfig } from '../config/types.js';
import { clip, formatBytes, formatDuration, printable, printableLine } from './format.js';
import type { gradingShape } from './job-shape.js';
import { arr, bool, int, literal, nullable, num, obj, parseJsonAs, type Infer, str } from './shape.js';
import { signalName } from './signals.js';
import type { Job, Verdict } from './types.js';

/** One grading of a job, as the ledger keeps it (job.gradings). */
export type Grading = Infer<typeof gradingShape>;
export type GradingClass = Grading['class'];
export type MetricValue = number | string | boolean | null;

/** The grader's exit codes of the contract (after the Kattis output validators). */
export const GRADER_EXIT = { graded: 42, invalid: 43 } as const;

/** The most of results.jsonl gpuq reads: a larger file is the grader's failure (bad_results). */
export const RESULTS_MAX_BYTES = 256 * 1024;
/** The most of message.txt gpuq reads (its head), and the most of it kept in the record. */
export const MESSAGE_MAX_BYTES = 16 * 1024;
const MESSAGE_KEEP = 1000;
/** Metrics kept from results.jsonl: at most this many, names and strings clipped. */
const METRICS_MAX = 64;
const METRIC_NAME_MAX = 64;
const METRIC_TEXT_MAX = 200;

/** gradings/N/status.json, written atomically by templates/grade.py (templates/README.md). */
export const gradingStatusShape = obj({
  version: literal(1),
  state: literal('running', 'done'),
  number: int,
  startedAtMs: int,
  endedAtMs: nullable(int),
  exitCode: nullable(int),
  signal: nullable(int),
  timedOut: bool,
  memoryKilled: bool,
  outputOverflow: bool,
  cancelled: bool,
  peakRssBytes: nullable(int),
  leftovers: int,
  /** grade.py's own trouble (the grader could not be started, a folder could not be made). */
  error: nullable(str),
  submission: nullable(
    obj({
      status: literal('ok', 'missing', 'invalid'),
      reason: nullable(str),
      bytes: nullable(int),
      sha256: nullable(str),
      crlf: nullable(bool),
      encoding: nullable(str),
    }),
  ),
  submissionName: str,
  dataFingerprint: nullable(str),
  answersFingerprint: nullable(str),
  limits: obj({ timeoutS: num, memoryBytes: int, outputBytes: int, maxSubmissionBytes: int }),
  grader: arr(str),
});
export type GradingStatus = Infer<typeof gradingStatusShape>;

/** What the client reads back from one `gradings/N/` (node/commands gradingSections). */
export interface GradingFiles {
  /** N, the grading's number. */
  number: number;
  /** status.json, checked (null: absent, torn or of the wrong shape). */
  status: GradingStatus | null;
  /** feedback/results.jsonl (null: absent, not a regular file, or over RESULTS_MAX_BYTES). */
  results: string | null;
  /** Its size as the node saw it (null: absent or not a regular file). */
  resultsBytes: number | null;
  /** The head of feedback/message.txt (null: absent or not a regular file). */
  message: string | null;
  /** The end of the grader's stderr.log. */
  stderrTail: string;
}

/** Parses gradings/N/status.json's text (null for a torn file or one of the wrong shape). */
export function parseGradingStatus(text: string | undefined): GradingStatus | null {
  return parseJsonAs(gradingStatusShape, text);
}

/** A grading judged: the ledger's record and the words the verdict says about it. */
export interface GradingJudgement {
  grading: Grading;
  summary: string;
  /** Facts, each line starting with "grading N:" (a regrade replaces them). */
  evidence: string[];
  hints: string[];
}

/** What the judgement needs to know about the job (for the hints and the summary). */
export interface GradingContext {
  jobId: string;
  node: string;
  competition: string;
  /** The metric's name (competitions.NAME.metric, default "score"). */
  metric: string;
  /** When the client looked, for a grading with no end time of its own (ISO 8601). */
  at: string;
}

/** results.jsonl judged: the score and metrics, or the first problem (naming its line). */
export type ResultsParse =
  | { ok: true; score: number; metrics: Record<string, MetricValue>; dropped: number }
  | { ok: false; problem: string };

/**
 * Parses results.jsonl (one JSON object a line; blank lines skipped): at least one object with a
 * numeric `score`, every `score` a finite number; the other fields are metrics (numbers, strings,
 * booleans, null; later lines override earlier ones; nested values are dropped and counted).
 */
export function parseResults(text: string): ResultsParse {
  const lines = text.split('\n');
  let score: number | null = null;
  const metrics: Record<string, MetricValue> = {};
  let objects = 0;
  let dropped = 0;
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const where = `line ${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      if (/\b(NaN|-?Infinity)\b/.test(line))
        return { ok: false, problem: `${where} is not JSON: NaN and Infinity are not numbers (a non-finite score?)` };
      return { ok: false, problem: `${where} is not JSON: ${quote(line)}` };
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v))
      return { ok: false, problem: `${where} is not a JSON object: ${quote(line)}` };
    objects++;
    for (const [key, value] of Object.entries(v as Record<string, unknown>)) {
      if (key === 'score') {
        if (typeof value !== 'number' || !Number.isFinite(value))
          return {
            ok: false,
            problem: `${where}: "score" is ${quote(JSON.stringify(value) ?? String(value))}, not a finite number`,
          };
        if (score === null) score = value;
        continue;
      }
      const name = clip(printableLine(key), METRIC_NAME_MAX);
      if (name === '' || (!(name in metrics) && Object.keys(metrics).length >= METRICS_MAX)) {
        dropped++;
        continue;
      }
      if (value === null || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value)))
        metrics[name] = value;
      else if (typeof value === 'string') metrics[name] = clip(printableLine(value), METRIC_TEXT_MAX);
      else dropped++;
    }
  }
  if (objects === 0) return { ok: false, problem: 'results.jsonl holds no JSON object (it is empty)' };
  if (score === null) return { ok: false, problem: `no line of results.jsonl has a numeric "score"` };
  return { ok: true, score, metrics, dropped };
}

function quote(text: string): string {
  return JSON.stringify(clip(printableLine(text), 80));
}

/** The grader's message.txt for the submitter: printable, one line, bounded. */
export function messageText(text: string | null): string | null {
  if (text === null) return null;
  const t = clip(printableLine(printable(text).replace(/\s+/g, ' ')), MESSAGE_KEEP);
  return t === '' ? null : t;
}

/** The last non-empty line of the grader's stderr, printable and bounded (or null). */
function lastLine(text: string): string | null {
  const lines = printable(text)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const last = lines[lines.length - 1];
  return last === undefined ? null : clip(printableLine(last), 200);
}

/**
 * Judges one grading from its files: the ledger's Grading record, the verdict's summary, evidence
 * (each line "grading N: …") and hints (the submitter's for a rejection, the operator's for a
 * grader failure). See the module comment for the blame rules.
 */
export function judgeGrading(files: GradingFiles, c: GradingContext): GradingJudgement {
  const s = files.status;
  const n = files.number;
  const tag = `grading ${n}:`;
  const at =
    s?.endedAtMs != null && s.endedAtMs > 1e12 && s.endedAtMs < 1e13 ? new Date(s.endedAtMs).toISOString() : c.at;
  const sub = s?.submission ?? null;
  const base: Grading = {
    at,
    class: 'grading_failed',
    cause: 'grader_error',
    score: null,
    metrics: {},
    message: null,
    graderExit: s?.exitCode ?? null,
    dataFingerprint: fingerprintText(s?.dataFingerprint ?? null),
    answersFingerprint: fingerprintText(s?.answersFingerprint ?? null),
    submission:
      sub && sub.status === 'ok' && sub.bytes !== null && sub.sha256 !== null
        ? {
            bytes: sub.bytes,
            sha256: clip(printableLine(sub.sha256), 64),
            crlf: sub.crlf === true,
            encoding: clip(printableLine(sub.encoding ?? 'unknown'), 20),
          }
        : null,
  };
  // The folder's number only where grade.py wrote it (its status.json); a guessed one is left out.
  if (s) base.number = n;
  const evidence = gradingEvidence(files, tag);
  const operator = (cause: string, why: string, hints: string[]): GradingJudgement => ({
    grading: { ...base, class: 'grading_failed', cause, message: clip(printableLine(why), MESSAGE_KEEP) },
    summary: `The grader failed (${why}): not your submission's fault.`,
    evidence,
    hints: [
      ...hints,
      `The grader's output is in gradings/${n}/ of the job's folder on node ${c.node}; gpuq diagnose ${c.jobId} shows its stderr.`,
      `Once the grader is fixed, grade the job again: gpuq grade ${c.jobId}`,
    ],
  });
  const submitter = (cause: string, why: string, hints: string[]): GradingJudgement => ({
    grading: { ...base, class: 'rejected', cause, message: clip(printableLine(why), MESSAGE_KEEP) },
    summary: `Submission rejected: ${clip(printableLine(why), 300)}`,
    evidence,
    hints,
  });
  const limits = s?.limits;
  if (s === null)
    return operator('grader_error', 'the grading step left no readable status.json', [
      `See grade.log in the job's folder on node ${c.node}: python3 and templates/grade.py must run there.`,
    ]);
  if (s.state !== 'done' || s.cancelled)
    return operator('grader_error', s.cancelled ? 'the grading was stopped' : 'the grading step did not finish', [
      'The supervisor ended while the grader ran (a cancel, a signal, or the node going down).',
    ]);
  if (sub?.status === 'missing')
    return submitter('submission_missing', sub.reason ?? `the program wrote no ${s.submissionName}`, [
      `The program must write ${clip(printableLine(s.submissionName), 200)} in its working folder (where it starts), as a regular file.`,
    ]);
  if (sub?.status === 'invalid')
    return submitter('submission_invalid', sub.reason ?? `${s.submissionName} was refused`, [
      `The submission must be a regular file (not a link, folder or FIFO) of at most ${formatBytes(s.limits.maxSubmissionBytes)}.`,
    ]);
  if (s.error !== null)
    return operator('grader_error', clip(printableLine(s.error), 300), [
      `Check competitions.${c.competition}.grader in the config: the command must exist on node ${c.node}.`,
    ]);
  if (s.memoryKilled)
    return operator('grader_oom', `it used more than its ${formatBytes(s.limits.memoryBytes)} of memory`, [
      `Raise competitions.${c.competition}.graderLimits.memory (now ${formatBytes(s.limits.memoryBytes)}), or make the grader use less.`,
    ]);
  if (s.timedOut)
    return operator('grader_timeout', `it ran past its ${formatDuration(s.limits.timeoutS)} time limit`, [
      `Raise competitions.${c.competition}.graderLimits.timeout (now ${formatDuration(limits?.timeoutS ?? 0)}), or make the grader faster.`,
    ]);
  if (s.outputOverflow)
    return operator('grader_error', `it wrote more than its ${formatBytes(s.limits.outputBytes)} of output`, [
      `Make the grader print less, or raise competitions.${c.competition}.graderLimits.output.`,
    ]);
  if (s.exitCode === GRADER_EXIT.invalid) {
    const msg = messageText(files.message);
    const j = submitter(
      'submission_invalid',
      msg ?? 'the grader found the submission invalid (it wrote no message.txt)',
      [`Fix what the grader's message says; gpuq results ${c.jobId} shows it in full.`],
    );
    return { ...j, grading: { ...j.grading, message: msg } };
  }
  if (s.exitCode === GRADER_EXIT.graded) {
    const bad = (problem: string) =>
      operator('bad_results', problem, [
        'The grader must write FEEDBACK_DIR/results.jsonl before exiting 42: one JSON object a line, at least one with a finite numeric "score" (other fields are metrics).',
      ]);
    if (files.resultsBytes === null) return bad('it exited 42 but wrote no results.jsonl');
    if (files.resultsBytes > RESULTS_MAX_BYTES || files.results === null)
      return bad(`results.jsonl is ${formatBytes(files.resultsBytes)}, over gpuq's ${formatBytes(RESULTS_MAX_BYTES)}`);
    const r = parseResults(files.results);
    if (!r.ok) return bad(r.problem);
    const metric = clip(printableLine(c.metric), 64);
    return {
      grading: {
        ...base,
        class: 'succeeded',
        cause: null,
        score: r.score,
        metrics: r.metrics,
        message: messageText(files.message),
      },
      summary: `Graded: ${metric} ${scoreText(r.score)}.`,
      evidence:
        r.dropped > 0
          ? [...evidence, `${tag} ${r.dropped} results.jsonl field(s) dropped (nested, or over ${METRICS_MAX})`]
          : evidence,
      hints: [],
    };
  }
  if (s.exitCode === 0)
    return operator('grader_error', 'it exited 0; a grader must exit 42 (graded) or 43 (invalid submission)', [
      'Make the grader exit 42 after writing results.jsonl, 43 after writing message.txt.',
    ]);
  if (s.signal !== null)
    return operator('grader_error', `it was killed by ${signalName(s.signal)}`, [
      'The grader crashed or was killed from outside; its stderr may say why.',
    ]);
  return operator('grader_error', s.exitCode === null ? 'it left no exit status' : `it exited ${s.exitCode}`, [
    'The grader crashed or refused its input; its stderr says why.',
  ]);
}

/** A fingerprint as printed ("sha256:" and hex), or null for anything else. */
function fingerprintText(v: string | null): string | null {
  return v !== null && /^sha256:[0-9a-f]{64}$/.test(v) ? v : null;
}

/** Seconds as printed in a grading's evidence: tenths under a minute (graders are quick). */
function secondsText(s: number): string {
  return s < 60 ? `${s.toFixed(1)}s` : formatDuration(s);
}

/** A score as printed: up to 6 significant digits, no exponent for everyday values. */
export function scoreText(score: number): string {
  if (Number.isInteger(score) && Math.abs(score) < 1e15) return String(score);
  const p = Number(score.toPrecision(6));
  return String(p);
}

function gradingEvidence(files: GradingFiles, tag: string): string[] {
  const s = files.status;
  if (s === null) return [`${tag} no status.json`];
  const out: string[] = [];
  const took =
    s.endedAtMs !== null && s.endedAtMs >= s.startedAtMs
      ? ` after ${secondsText((s.endedAtMs - s.startedAtMs) / 1000)}`
      : '';
  const exit =
    s.exitCode === null
      ? 'grader not run'
      : s.signal !== null
        ? `grader killed by ${signalName(s.signal)}`
        : `grader exit ${s.exitCode}`;
  out.push(`${tag} ${exit}${took}${s.peakRssBytes ? `, peak memory ${formatBytes(s.peakRssBytes)}` : ''}`);
  const sub = s.submission;
  if (sub?.status === 'ok' && sub.bytes !== null)
    out.push(
      `${tag} submission ${clip(printableLine(s.submissionName), 100)}: ${formatBytes(sub.bytes)}, ${printableLine(sub.encoding ?? '?')}` +
        `${sub.crlf ? ', CRLF line endings' : ''}, sha256 ${printableLine(sub.sha256 ?? '').slice(0, 12)}`,
    );
  if (s.leftovers > 0) out.push(`${tag} ${s.leftovers} process(es) of the grader killed after it ended`);
  const err = lastLine(files.stderrTail);
  if (err !== null && s.exitCode !== GRADER_EXIT.graded) out.push(`${tag} grader stderr: ${err}`);
  return out;
}

/**
 * The verdict of a job whose program succeeded, once graded: the grading's class and cause, its
 * summary and hints, the program's evidence with the grading's (a regrade's replaces an older
 * grading's lines), and the score and metrics when graded. The program's exit stays.
 */
export function gradedVerdict(program: Verdict, j: GradingJudgement): Verdict {
  const kept = program.evidence.filter((e) => !/^grading \d+:/.test(e));
  const g = j.grading;
  return {
    ...program,
    class: g.class,
    cause: g.cause,
    summary: j.summary,
    evidence: [...kept, ...j.evidence],
    hints: j.hints,
    score: g.class === 'succeeded' ? g.score : null,
    metrics: g.class === 'succeeded' ? g.metrics : null,
  };
}

/**
 * A job with one more grading (oldest first), the newest's score and metrics copied up (null
 * when it was not graded), and the verdict the newest grading gives.
 */
export function withGrading(job: Job, j: GradingJudgement): Job {
  const g = j.grading;
  const graded = g.class === 'succeeded';
  return {
    ...job,
    gradings: [...(job.gradings ?? []), g],
    score: graded ? g.score : null,
    metrics: graded ? g.metrics : null,
    verdict: job.verdict ? gradedVerdict(job.verdict, j) : job.verdict,
  };
}

/**
 * grade.py's arguments for a competition (the wrapper's GRADE array, and `gpuq grade`'s
 * command), or an empty list when it has no grader: the job is not graded.
 */
export function gradeArgs(c: CompetitionConfig | undefined | null): string[] {
  if (!c?.grader || c.grader.length === 0) return [];
  return [
    '--submission',
    c.submission,
    '--data',
    c.data ?? '',
    '--answers',
    c.answers ?? '',
    '--timeout-s',
    String(c.graderLimits.timeoutS),
    '--memory-bytes',
    String(Math.floor(c.graderLimits.memoryBytes)),
    '--output-bytes',
    String(Math.floor(c.graderLimits.outputBytes)),
    '--max-submission-bytes',
    String(Math.floor(c.maxSubmissionBytes)),
    '--',
    ...c.grader,
  ];
}

/**
 * Whether a submission path from the config is usable: relative, no "." or ".." parts, no empty
 * parts (grade.py refuses the same). Returns why not, or null.
 */
export function submissionPathProblem(path: string): string | null {
  if (path === '' || path.startsWith('/')) return "it must be a path relative to the program's working folder";
  if (path.split('/').some((p) => p === '' || p === '.' || p === '..'))
    return 'it must not hold ".", ".." or empty parts';
  return null;
}

/** What `gpuq diagnose` shows of a job's newest grading (issue 13): the grader's side, bounded. */
export interface GraderReport {
  number: number;
  /** The grader's exit code, signal and the limits that stopped it (null: it did not run). */
  exitCode: number | null;
  signal: number | null;
  timedOut: boolean;
  memoryKilled: boolean;
  outputOverflow: boolean;
  durationMs: number | null;
  peakRssBytes: number | null;
  /** grade.py's own trouble, the grader's message.txt, the submission check's refusal (printable). */
  error: string | null;
  message: string | null;
  submission: string | null;
  /** The last lines of the grader's stderr.log (printable, at most 20). */
  stderrTail: string[];
  limits: GradingStatus['limits'] | null;
  /** The grader command as it ran (printable). */
  grader: string[];
}

/** The diagnosis part about a grading, from what the probe read of `gradings/N/`. */
export function graderReport(files: GradingFiles): GraderReport {
  const s = files.status;
  const lines = printable(files.stderrTail)
    .split('\n')
    .map((l) => clip(printableLine(l), 300));
  while (lines.length > 0 && (lines[lines.length - 1] as string).trim() === '') lines.pop();
  const sub = s?.submission;
  return {
    number: files.number,
    exitCode: s?.exitCode ?? null,
    signal: s?.signal ?? null,
    timedOut: s?.timedOut ?? false,
    memoryKilled: s?.memoryKilled ?? false,
    outputOverflow: s?.outputOverflow ?? false,
    durationMs: s && s.endedAtMs !== null && s.endedAtMs >= s.startedAtMs ? s.endedAtMs - s.startedAtMs : null,
    peakRssBytes: s?.peakRssBytes ?? null,
    error: s?.error ? clip(printableLine(s.error), 300) : s === null ? 'no readable status.json' : null,
    message: messageText(files.message),
    submission: sub && sub.status !== 'ok' ? clip(printableLine(`${sub.status}: ${sub.reason ?? ''}`), 300) : null,
    stderrTail: lines.slice(-20),
    limits: s?.limits ?? null,
    grader: (s?.grader ?? []).slice(0, 20).map((a) => clip(printableLine(a), 200)),
  };
}
