/**
 * `gpuq diagnose ID [--json]`: the post-mortem of one job. The service gathers, this module
 * renders: verdict and summary, evidence, peaks against limits, the last stderr lines, the
 * node's state where the job ran, and hints.
 */
import type { Command } from 'commander';
import { EXIT } from '../core/exit-codes.js';
import { formatBytes, formatDuration, formatPercent } from '../core/format.js';
import { exitText } from '../core/present.js';
import type { Diagnosis } from '../services/diagnose.js';
import type { CliApp } from './app.js';
import { evidenceBesidesPeaks, paintState } from './render.js';
import type { Style } from './style.js';

/** Registers `diagnose`. */
export function registerDiagnose(program: Command, app: CliApp): void {
  program
    .command('diagnose')
    .description('post-mortem of a job: verdict, evidence, peaks against limits, last stderr lines, node state, fixes')
    .argument('<id>', 'job id or unambiguous prefix')
    .option('--json', 'print the diagnosis as JSON')
    .action(async (id: string, f: { json?: boolean }, cmd: Command) => {
      const ctx = app.context(cmd);
      const { diagnoseJob } = await import('../services/diagnose.js');
      const d = await diagnoseJob(ctx, id);
      if (f.json) app.printJson(d);
      else app.print(renderDiagnosis(d, app.style(false)));
      // Everything known was printed; an unreachable node still makes the diagnosis incomplete.
      if (!d.nodeFacts.reachable) {
        if (!f.json)
          app.io.stderr.write(
            `gpuq: node ${d.node} could not be reached; the diagnosis above is from the ledger alone.\n`,
          );
        app.exitCode = EXIT.unreachable;
      }
    });
}

function section(style: Style, title: string, body: string[]): string[] {
  return body.length === 0 ? [] : ['', style.c.bold(title), ...body];
}

/** The node facts as aligned lines. */
function nodeLines(d: Diagnosis): string[] {
  const s = d.nodeFacts.status;
  if (!s) return [];
  const out: string[] = [];
  const at = s.diskPath ? ` at ${s.diskPath}` : '';
  if (s.disk) {
    out.push(
      `  disk     ${formatBytes(s.disk.freeBytes)} free of ${formatBytes(s.disk.totalBytes)} ` +
        `(${formatPercent(s.disk.totalBytes > 0 ? s.disk.freeBytes / s.disk.totalBytes : 0)})${at}`,
    );
  }
  if (s.inodes)
    out.push(
      `  inodes   ${s.inodes.free} free of ${s.inodes.total}` +
        `${s.inodes.total > 0 ? ` (${formatPercent(s.inodes.free / s.inodes.total)})` : ''}`,
    );
  if (s.memory && s.memory.availableBytes !== null)
    out.push(`  memory   ${formatBytes(s.memory.availableBytes)} available of ${formatBytes(s.memory.totalBytes)}`);
  if (s.load) out.push(`  load     ${s.load.map((l) => l.toFixed(2)).join(' ')}${s.cpus ? ` on ${s.cpus} cores` : ''}`);
  for (const g of s.gpus ?? []) {
    const mem =
      g.memoryUsedBytes !== null && g.memoryTotalBytes !== null
        ? `${formatBytes(g.memoryUsedBytes)} of ${formatBytes(g.memoryTotalBytes)} used`
        : 'memory unknown';
    const busy = g.utilizationPct !== null ? `, ${g.utilizationPct}% busy` : '';
    const n = g.processes.length;
    out.push(`  GPU ${g.index}    ${g.name}: ${mem}${busy}, ${n} process${n === 1 ? '' : 'es'}`);
  }
  return out;
}

/** The grader's side of the newest grading (issue 13): exit, limits, message, stderr tail. */
function graderLines(d: Diagnosis, style: Style): string[] {
  const g = d.grading;
  if (!g) return [];
  const out: string[] = [];
  const stopped = [
    g.timedOut && 'over its time limit',
    g.memoryKilled && 'over its memory',
    g.outputOverflow && 'over its output',
  ]
    .filter(Boolean)
    .join(', ');
  const exit =
    g.exitCode === null
      ? 'not run'
      : `exit ${g.exitCode}${g.signal !== null ? ` (signal ${g.signal})` : ''}${stopped ? `, stopped ${stopped}` : ''}`;
  out.push(`  grader    ${g.grader.join(' ') || '?'}`);
  out.push(
    `  ended     ${exit}${g.durationMs !== null ? ` after ${formatDuration(g.durationMs / 1000)}` : ''}` +
      `${g.peakRssBytes ? `, peak memory ${formatBytes(g.peakRssBytes)}` : ''}`,
  );
  if (g.limits)
    out.push(
      `  limits    ${formatDuration(g.limits.timeoutS)} wall clock, ${formatBytes(g.limits.memoryBytes)} memory, ` +
        `${formatBytes(g.limits.outputBytes)} output, submission up to ${formatBytes(g.limits.maxSubmissionBytes)}`,
    );
  if (g.submission) out.push(`  submission ${g.submission}`);
  if (g.error) out.push(`  problem   ${g.error}`);
  if (g.message) out.push(`  message   ${g.message}`);
  if (g.stderrTail.length > 0) {
    out.push(
      `  last ${g.stderrTail.length} line${g.stderrTail.length === 1 ? '' : 's'} of its stderr (gradings/${g.number}/stderr.log):`,
    );
    out.push(...g.stderrTail.map((l) => `  ${style.c.gray('|')} ${l}`));
  }
  return out;
}

/** The human page of a diagnosis. Pure string building. */
export function renderDiagnosis(d: Diagnosis, style: Style): string {
  const c = style.c;
  const v = d.verdict;
  const label = v ? v.class : d.state;
  const exit = v ? `, ${exitText(v)}` : '';
  const lines = [
    `${c.bold(d.id)}  ${d.name}  on ${d.node}: ${paintState(style, label)}${v?.cause ? ` (${v.cause})` : ''}${exit}`,
    `  ${d.summary}`,
    ...section(
      style,
      'Evidence',
      evidenceBesidesPeaks(d.evidence, d.peaks).map((e) => `  - ${e}`),
    ),
    ...section(
      style,
      d.verdict ? 'Peaks against limits' : 'Peaks so far, against limits',
      d.peaks.map((p) => `  - ${p.text}`),
    ),
    ...section(style, 'Now', d.current ? [`  ${d.current.text}`] : []),
    ...section(
      style,
      `Last ${d.stderrTail.length} line${d.stderrTail.length === 1 ? '' : 's'} of stderr` +
        `${d.folder ? ` (${d.folder.dir}/stderr.log)` : ''}`,
      d.stderrTail.map((l) => `  ${c.gray('|')} ${l}`),
    ),
    ...section(style, d.grading ? `Grader (grading ${d.grading.number})` : 'Grader', graderLines(d, style)),
    ...section(style, `Node ${d.node}`, nodeLines(d)),
    ...section(
      style,
      'Hints',
      d.hints.map((h) => `  ${c.yellow('-')} ${h}`),
    ),
    ...section(
      style,
      'Notes',
      d.notes.map((n) => `  ${n}`),
    ),
  ];
  if (d.folder?.exists && d.stderrTail.length === 0) lines.push('', c.gray('stderr.log is empty.'));
  return lines.join('\n');
}
