/**
 * `gpuq competitions` (the config's competitions) and `gpuq competitions check [NAME]` (per node:
 * data, answers and grader there, and the fingerprints). Exit 3 when a node is unreachable.
 */
import type { Command } from 'commander';
import type { CompetitionConfig } from '../config/types.js';
import { folderText } from '../core/competition-check.js';
import { EXIT } from '../core/exit-codes.js';
import { formatBytes, formatDuration, printableLine } from '../core/format.js';
import { LIMITS } from '../core/limits.js';
import type { NodeCheck } from '../services/competitions.js';
import type { CliApp } from './app.js';
import type { Style } from './style.js';

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** The limits a competition sets, in the order of the limits table ("timeout 10m00s, gpus 1"); "-" for none. */
function partialLimitsLine(limits: CompetitionConfig['limits']): string {
  const parts = LIMITS.filter((l) => limits[l.key] !== undefined).map((l) => {
    const v = limits[l.key] as number | null;
    const text =
      v === null
        ? 'unlimited'
        : l.kind === 'size'
          ? formatBytes(v)
          : l.kind === 'duration'
            ? formatDuration(v, 'column')
            : String(v);
    return `${l.label} ${text}`;
  });
  return parts.length > 0 ? parts.join(', ') : '-';
}

/** The command line of a grader as it prints ("python3 /srv/grade.py"), each argument JSON-quoted where it needs it. */
function commandText(args: readonly string[]): string {
  return args.map((a) => (/^[\w@%+=:,./~-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/** `gpuq competitions`: one block per competition. */
export function renderCompetitions(comps: CompetitionConfig[], style: Style): string {
  const c = style.c;
  const row = (k: string, v: string) => `  ${pad(k, 11)} ${v}`;
  return comps
    .map((x) =>
      [
        c.bold(x.name),
        row('metric', `${printableLine(x.metric)}, ${x.higherIsBetter ? 'higher' : 'lower'} is better`),
        row(
          'grader',
          x.grader
            ? `${printableLine(commandText(x.grader))}  (at most ${formatDuration(x.graderLimits.timeoutS, 'column')}, ` +
                `${formatBytes(x.graderLimits.memoryBytes)} of memory, ${formatBytes(x.graderLimits.outputBytes)} of output)`
            : c.yellow('none: its jobs are not graded'),
        ),
        row('data', x.data ? printableLine(x.data) : '-'),
        row('answers', x.answers ? printableLine(x.answers) : '-'),
        row('submission', `${printableLine(x.submission)} (at most ${formatBytes(x.maxSubmissionBytes)})`),
        row('limits', partialLimitsLine(x.limits)),
        row('boundary', x.requireBoundary ? 'required (not graded on a node without one)' : 'not required'),
      ].join('\n'),
    )
    .join('\n\n');
}

/** `gpuq competitions check`: per node a header, one row per competition, then its problems one line each. */
export function renderCheck(reports: NodeCheck[], style: Style): string {
  const c = style.c;
  const out: string[] = [];
  for (const r of reports) {
    if (!r.reachable) {
      out.push(`${c.bold(r.node)}  ${c.red('unreachable')}: ${printableLine(r.error ?? '')}`);
      if (r.hint) out.push(...r.hint.split('\n').map((l) => `  ${c.dim(l)}`));
      continue;
    }
    out.push(`${c.bold(r.node)}  ${c.green('ok')}`);
    if (r.error) out.push(`  ${c.red('problem:')} ${printableLine(r.error)}`);
    const rows = r.competitions.map((x) => [
      x.name,
      folderText(x.data),
      folderText(x.answers),
      x.grader.status === 'ok'
        ? `${x.grader.missingFiles.length > 0 ? 'file missing' : 'ok'} (${printableLine(x.grader.resolved ?? '')})`
        : x.grader.status === 'unset'
          ? '-'
          : x.grader.status,
    ]);
    const head = ['COMPETITION', 'DATA', 'ANSWERS', 'GRADER'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
    const line = (cells: string[]) =>
      `  ${cells.map((cell, i) => (i === cells.length - 1 ? cell : pad(cell, widths[i] as number))).join('  ')}`;
    if (rows.length > 0) out.push(c.dim(line(head)), ...rows.map(line));
    for (const x of r.competitions)
      for (const p of x.problems) out.push(`  ${c.yellow('problem:')} ${x.name}: ${printableLine(p)}`);
  }
  return out.join('\n');
}

/** Registers `competitions` and `competitions check`. */
export function registerCompetitions(program: Command, app: CliApp): void {
  const competitions = program
    .command('competitions')
    .description("the config's competitions: metric, grader, data, answers, submission file, limits")
    .option('--json', 'print a JSON array')
    .action(async (f: { json?: boolean }, cmd: Command) => {
      const ctx = app.context(cmd);
      const { listCompetitions } = await import('../services/competitions.js');
      const comps = listCompetitions(ctx);
      if (f.json) app.printJson(comps);
      else if (comps.length === 0)
        app.io.stderr.write(
          `gpuq: no competitions in ${ctx.config.source ?? 'the config'}; add them under "competitions" (README, "Grading and results")\n`,
        );
      else app.print(renderCompetitions(comps, app.style(false)));
    });
  competitions
    .command('check')
    .description('per node: whether data, answers and grader exist, and the fingerprints of data and answers')
    .argument('[name]', 'one competition (default: all)')
    .option('--json', 'print a JSON array, one entry per node')
    .addHelpText(
      'after',
      '\nExit 3 when a node is unreachable; problems of a reachable node are listed, one line each.\n' +
        'Fingerprints are cached on each node (<workdir>/.cache/fingerprints.json): a data set is read once.',
    )
    .action(async (name: string | undefined, _f: unknown, cmd: Command) => {
      const ctx = app.context(cmd);
      // --json given before or after "check" (the parent command has one too).
      const json = (cmd.optsWithGlobals() as { json?: boolean }).json === true;
      const { checkCompetitions } = await import('../services/competitions.js');
      const reports = await checkCompetitions(ctx, name ?? null);
      if (json) app.printJson(reports);
      else app.print(renderCheck(reports, app.style(false)));
      if (reports.some((r) => !r.reachable)) app.exitCode = EXIT.unreachable;
    });
}
