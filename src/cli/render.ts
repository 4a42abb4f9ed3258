/**
 * Human renderings of jobs for the terminal. Pure string building.
 */
import { formatDuration, printableLine } from '../core/format.js';
import type { Peak } from '../core/peaks.js';
import { jobDurationMs } from '../core/job.js';
import { durationText, exitText, limitsLine, tone } from '../core/present.js';
import { estimateText, queuedLabel } from '../core/queue.js';
import type { Job, Verdict } from '../core/types.js';
import { gradingLines, scoreCell } from './render-grading.js';
import { paint, type Style } from './style.js';

/** Milliseconds as a table's duration ("42s", "4m10s", "2h05m07s", "3d04h"). */
function columnMs(ms: number): string {
  return formatDuration(ms / 1000, 'column');
}

/** The state column: the verdict class once done; "queued #3" while queued at a known position. */
export function stateLabel(job: Job): string {
  return job.state === 'done' && job.verdict ? job.verdict.class : queuedLabel(job);
}

/** Colors a state label or verdict class by its tone (core/present.ts); "queued #3" as queued. */
export function paintState(style: Style, label: string): string {
  return paint(style, tone(label.startsWith('queued #') ? 'queued' : label), label);
}

/** How long a job ran (or has been running): the supervisor's start to its end, as every command prints it. */
export function jobDuration(job: Job, now: Date): string {
  return durationText(jobDurationMs(job, now.getTime()));
}

function pad(text: string, width: number, painted?: string): string {
  const p = painted ?? text;
  return text.length >= width ? p : p + ' '.repeat(width - text.length);
}

/** The `gpuq list` table. */
export function renderTable(jobs: Job[], now: Date, style: Style): string {
  const rows = jobs.map((j) => ({
    id: j.id,
    name: ((n) => (n.length > 28 ? `${n.slice(0, 27)}…` : n))(printableLine(j.name)),
    node: j.remote?.slurmJobId ? `${j.node}:${j.remote.slurmJobId}` : j.node,
    state: stateLabel(j),
    age: columnMs(now.getTime() - Date.parse(j.createdAt)),
    duration: jobDuration(j, now),
    why: whyColumn(j),
  }));
  const head = {
    id: 'ID',
    name: 'NAME',
    node: 'NODE',
    state: 'STATE',
    age: 'AGE',
    duration: 'DURATION',
    why: 'CAUSE / EXIT',
  };
  const w = (k: keyof typeof head) => Math.max(head[k].length, ...rows.map((r) => r[k].length));
  const line = (r: typeof head, painted = false) =>
    [
      pad(r.id, w('id')),
      pad(r.name, w('name')),
      pad(r.node, w('node')),
      pad(r.state, w('state'), painted ? paintState(style, r.state) : undefined),
      pad(r.age, w('age')),
      pad(r.duration, w('duration')),
      r.why,
    ].join('  ');
  return [style.c.bold(line(head)), ...rows.map((r) => line(r, true))].join('\n');
}

/**
 * The list's answer to "why": the verdict's cause and exit status ("cpu_time · exit 137 SIGKILL"),
 * a queued job's reason (at most 60 characters), "-" while the job runs.
 */
export function whyColumn(job: Job): string {
  const v = job.verdict;
  if (!v && job.state === 'queued' && job.queue) {
    const r = printableLine(job.queue.reason);
    return r.length > 60 ? `${r.slice(0, 59)}…` : r;
  }
  if (!v) return job.state === 'grading' ? 'grading' : '-';
  const score = scoreCell(job);
  if (score !== null) return score;
  const exit = v.exitCode === null ? 'no exit status' : `exit ${v.exitCode}${v.signal ? ` ${v.signal}` : ''}`;
  return v.cause ? `${v.cause} · ${exit}` : exit;
}

/** One-line verdict: "abc12345 timeout (exit 137 · SIGKILL · timed out): Stopped at …". */
export function verdictLine(job: Job, style: Style): string {
  const v = job.verdict as Verdict | null;
  if (!v) return `${job.id} ${job.state}`;
  return `${job.id} ${paintState(style, v.class)} (${exitText(v)}): ${v.summary}`;
}

/** Evidence lines that the peaks section does not already say (a peak can be evidence too). */
export function evidenceBesidesPeaks(evidence: readonly string[], peaks: readonly Peak[] | null | undefined): string[] {
  const said = new Set((peaks ?? []).map((p) => p.text));
  return evidence.filter((e) => !said.has(e));
}

/**
 * What kept the job's program from its supervisor (README, "Trust model"), for `show`; null for
 * a job that has not started, or one recorded before boundaries were.
 */
export function boundaryText(job: Job): string | null {
  switch (job.remote?.boundary) {
    case 'uid':
      return 'uid: the program ran as a user of its own; it could not write its verdict nor signal its supervisor';
    case 'userns':
      return 'userns: the program ran in its own user, mount and pid namespaces; it could not write its verdict nor signal its supervisor';
    case 'container':
      return 'container: the program ran in a Docker container of its own, as the node account, without capabilities; it could not write its verdict nor signal its supervisor';
    case 'none':
      return 'none: the job ran without a trust boundary; it could have written its own verdict';
    default:
      return null;
  }
}

/**
 * The `gpuq show` page; `peaks` (from the job folder, when it could be read) adds the resource
 * peaks against limits.
 */
export function renderJob(job: Job & { peaks?: Peak[] | null }, now: Date, style: Style): string {
  const c = style.c;
  const lines = [
    `${c.bold('Job')}        ${job.id}  ${printableLine(job.name)}`,
    `${c.bold('State')}      ${paintState(style, stateLabel(job))}`,
    `${c.bold('Node')}       ${job.node}${job.gpus.length ? `  GPU ${job.gpus.join(',')}` : ''}`,
    `${c.bold('File')}       ${printableLine(job.file)}`,
  ];
  if (job.state === 'queued') {
    const q = job.queue;
    lines.push(
      `${c.bold('Queue')}      ${q ? `position ${q.position} on ${job.node}` : `waiting on ${job.node} (position not read yet)`}` +
        `${job.priority ? `  priority ${job.priority}` : ''}`,
    );
    if (q)
      lines.push(
        `${c.bold('Reason')}     ${printableLine(q.reason)}`,
        `${c.bold('Starts')}     ${estimateText(q.estimatedStart, now.getTime())}`,
      );
  } else if (job.priority) lines.push(`${c.bold('Priority')}   ${job.priority}`);
  if (job.competition) lines.push(`${c.bold('Competition')} ${job.competition}`);
  if (job.args.length) lines.push(`${c.bold('Args')}       ${printableLine(JSON.stringify(job.args))}`);
  if (Object.keys(job.env).length)
    lines.push(`${c.bold('Env')}        ${printableLine(Object.keys(job.env).join(', '))}`);
  if (job.remote)
    lines.push(
      `${c.bold('Folder')}     ${printableLine(job.remote.dir)}  ` +
        `(supervisor pid ${job.remote.supervisorPid}, job pid ${job.remote.pid})`,
    );
  if (job.remote?.slurmJobId) lines.push(`${c.bold('Slurm')}      job ${printableLine(job.remote.slurmJobId)}`);
  const b = boundaryText(job);
  if (b) lines.push(`${c.bold('Boundary')}   ${job.remote?.boundary === 'none' ? c.yellow(b) : b}`);
  lines.push(
    `${c.bold('Limits')}     ${limitsLine(job.limits)}`,
    `${c.bold('Created')}    ${job.createdAt}`,
    `${c.bold('Started')}    ${job.startedAt ? `${job.startedAt}  (node clock, the supervisor's start)` : '-'}`,
    `${c.bold('Ended')}      ${job.endedAt ? `${job.endedAt}  (node clock, the program's end)` : '-'}`,
    `${c.bold('Duration')}   ${jobDuration(job, now)}${job.state === 'done' ? '' : ' so far'}`,
    `${c.bold('History')}    (when gpuq noticed each change, this machine's clock)`,
    ...job.history.map((h) => `  ${h.at}  ${h.state}${h.note ? `  ${printableLine(h.note)}` : ''}`),
  );
  if (job.peaks && job.peaks.length > 0) {
    lines.push(c.bold(job.state === 'done' ? 'Peaks' : 'Peaks so far'), ...job.peaks.map((p) => `  ${p.text}`));
  }
  const v = job.verdict;
  if (v) {
    lines.push(`${c.bold('Verdict')}    ${paintState(style, v.class)}${v.cause ? ` (${v.cause})` : ''}: ${v.summary}`);
    for (const e of evidenceBesidesPeaks(v.evidence, job.peaks)) lines.push(`  - ${e}`);
    for (const h of v.hints) lines.push(`  ${c.yellow('hint:')} ${h}`);
  }
  lines.push(...gradingLines(job, style));
  return lines.join('\n');
}
