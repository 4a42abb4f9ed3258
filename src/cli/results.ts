/**
 * `gpuq results ID [--out DIR] [--force]` and `gpuq results --competition NAME [--all]`:
 * flags → options → services/results → the page or the leaderboard.
 */
import type { Command } from 'commander';
import { usageError } from '../core/errors.js';
import { shownName } from '../core/file-names.js';
import { formatBytes, printableLine } from '../core/format.js';
import { formatScore, type Grading } from '../core/leaderboard.js';
import type { CompetitionResults, JobResults } from '../services/results.js';
import type { CliApp } from './app.js';
import { paintState } from './render.js';
import { metricsText, shortFingerprint } from './render-grading.js';
import type { Style } from './style.js';

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** A time as the pages print it: "2026-11-28 08:40:12 UTC" (the node's clock). */
function whenText(at: string): string {
  const ms = Date.parse(at);
  return Number.isNaN(ms) ? printableLine(at) : `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** The class of a grading with its cause: "rejected (submission_missing)". */
function classText(style: Style, g: Grading): string {
  return `${paintState(style, g.class)}${g.cause ? ` (${printableLine(g.cause)})` : ''}`;
}

/** The `gpuq results ID` page. */
export function renderResults(r: JobResults, style: Style): string {
  const c = style.c;
  const row = (k: string, v: string) => `${c.bold(pad(k, 12))} ${v}`;
  const direction = r.higherIsBetter === null ? '' : `, ${r.higherIsBetter ? 'higher' : 'lower'} is better`;
  const lines = [
    row('Job', `${r.id}  ${printableLine(r.name)}`),
    row('Competition', `${r.competition}${r.metric ? ` (${printableLine(r.metric)}${direction})` : ''}`),
  ];
  const g = r.newest;
  if (!g) {
    lines.push(row('Grading', r.note ?? 'not graded'));
    return lines.join('\n');
  }
  lines.push(
    row('Grading', `${r.grading} of ${r.gradings.length}, ${whenText(g.at)}: ${classText(style, g)}`),
    row('Score', formatScore(g.score)),
    row('Metrics', metricsText(g.metrics, 64) || '-'),
  );
  if (g.message) lines.push(row('Message', printableLine(g.message)));
  if (g.class === 'grading_failed')
    lines.push(row('', c.yellow("the grader failed: not your submission's fault (gpuq diagnose for the operator)")));
  if (g.graderExit !== null) lines.push(row('Grader exit', String(g.graderExit)));
  lines.push(row('Data', g.dataFingerprint ?? '-'), row('Answers', g.answersFingerprint ?? '-'));
  const s = g.submission;
  lines.push(
    row(
      'Submission',
      s
        ? `${formatBytes(s.bytes)}, sha256 ${printableLine(s.sha256).slice(0, 16)}…, ${printableLine(s.encoding)}` +
            `${s.crlf ? ', CRLF line endings' : ''}`
        : '-',
    ),
  );
  if (r.gradings.length > 1) {
    lines.push(c.bold('History'));
    r.gradings.forEach((h, i) => {
      const changed = [
        h.dataFingerprint !== g.dataFingerprint ? 'other data' : null,
        h.answersFingerprint !== g.answersFingerprint ? 'other answers' : null,
      ].filter(Boolean);
      lines.push(
        `  ${i + 1}  ${whenText(h.at)}  ${classText(style, h)}  ${formatScore(h.score)}` +
          `${changed.length > 0 ? `  (${changed.join(', ')})` : ''}`,
      );
    });
  }
  return lines.join('\n');
}

/** The `gpuq results --competition` table. */
export function renderBoard(b: CompetitionResults, style: Style): string {
  const c = style.c;
  const comp = b.competition;
  const head = ['#', 'ID', 'NAME', 'SCORE', 'WHEN', 'NODE', 'DATA', 'NOTE'];
  const rows = b.rows.map((r) => {
    const notes: string[] = [];
    if (r.class !== 'succeeded') notes.push(`${r.class}${r.cause ? ` (${printableLine(r.cause)})` : ''}`);
    if (r.notComparable.length > 0) notes.push(`not comparable: ${r.notComparable.join(' and ')} differ`);
    return [
      r.rank === null ? '-' : String(r.rank),
      r.id,
      ((n) => (n.length > 28 ? `${n.slice(0, 27)}…` : n))(printableLine(r.name)),
      formatScore(r.score),
      whenText(r.at).replace(/ UTC$/, ''),
      r.node,
      shortFingerprint(r.dataFingerprint),
      notes.join('; '),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : pad(cell, widths[i] as number)))
      .join('  ')
      .trimEnd();
  const graded = b.rows.filter((r) => r.class === 'succeeded').length;
  const title =
    `${c.bold(comp.name)}: ${printableLine(comp.metric)}, ${comp.higherIsBetter ? 'higher' : 'lower'} is better; ` +
    `${graded} graded job${graded === 1 ? '' : 's'}` +
    (b.reference ? `; compared with the data of job ${b.reference.id} (the newest graded)` : '');
  return [title, c.bold(line(head)), ...rows.map((r) => line(r))].join('\n');
}

/** Registers `results`. */
export function registerResults(program: Command, app: CliApp): void {
  program
    .command('results')
    .description("a graded job's score, metrics and grader message; or a competition's leaderboard")
    .argument('[id]', 'job id or prefix')
    .option('--competition <name>', "the competition's graded jobs, best first")
    .option('--all', 'with --competition: rejected and failed gradings too (after the graded jobs)')
    .option('--out <dir>', "copy the newest grading's submission and feedback folder (results.jsonl…) into DIR")
    .option('--force', 'with --out: replace files that exist there')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nJobs graded against other data or answers than the newest grading are marked "not comparable".\n' +
        'With --out, links, special files and unsafe names are never followed nor copied (named on stderr);\n' +
        'the size caps are those of gpuq get (defaults.maxGetFileSize, defaults.maxGetSize).',
    )
    .action(
      async (
        id: string | undefined,
        f: { competition?: string; all?: boolean; out?: string; force?: boolean; json?: boolean },
        cmd: Command,
      ) => {
        const ctx = app.context(cmd);
        const svc = await import('../services/results.js');
        if (f.competition !== undefined) {
          if (id !== undefined)
            throw usageError('give a job id or --competition NAME, not both.', 'gpuq results --help');
          if (f.out !== undefined || f.force)
            throw usageError('--out and --force go with a job id, not --competition.');
          const b = await svc.competitionResults(ctx, { competition: f.competition, all: f.all === true });
          if (f.json) app.printJson(b.rows);
          else if (b.rows.length === 0)
            app.io.stderr.write(
              `gpuq: no ${f.all ? '' : 'graded '}jobs in competition ${b.competition.name} yet` +
                `${f.all ? '' : ' (--all adds rejected and failed gradings)'}\n`,
            );
          else app.print(renderBoard(b, app.style(false)));
          return;
        }
        if (id === undefined)
          throw usageError('give a job id, or --competition NAME for a leaderboard.', 'gpuq results --help');
        if (f.all) throw usageError('--all goes with --competition NAME.');
        if (f.force && f.out === undefined) throw usageError('--force goes with --out DIR.');
        const r =
          f.out !== undefined
            ? await svc.copyResults(ctx, { id, out: f.out, force: f.force === true }, app.io.cwd)
            : await svc.jobResults(ctx, id);
        if (r.out) {
          for (const s of r.out.skipped)
            app.io.stderr.write(`gpuq: left out ${shownName(s.name)}: ${s.why.replace(/^gpuq: /, '')}\n`);
          for (const m of r.out.missing) app.io.stderr.write(`gpuq: the grading has no ${shownName(m)}\n`);
          const bytes = r.out.files.reduce((n, x) => n + x.size, 0);
          app.io.stderr.write(
            `gpuq: copied ${r.out.files.length} file(s), ${formatBytes(bytes)}, of grading ${r.grading} into ${r.out.dir}\n`,
          );
        }
        if (f.json) app.printJson(r);
        else app.print(renderResults(r, app.style(false)));
      },
    );
}
